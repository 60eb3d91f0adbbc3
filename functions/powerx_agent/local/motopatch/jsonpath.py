"""Patch 9 (see the package's docstring): the JSONPath expressions moto's EventBridge and Step Functions
evaluate are parsed once."""

from __future__ import annotations

import sys
from typing import Any


def patch_parse_cache() -> None:
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path

    original = jsonpath_ng.ext.parse
    parsed: dict[str, Any] = {}

    def parse(path: str, *args: Any, **kwargs: Any) -> Any:
        # only moto's calls are cached: our own code parses its paths once itself (strategy/paths.py)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if args or kwargs or not isinstance(path, str) or not caller.startswith("moto."):
            return original(path, *args, **kwargs)
        found = parsed.get(path)
        if found is None:
            found = original(path)
            if len(parsed) >= 4096:
                parsed.clear()
            parsed[path] = found
        return found

    jsonpath_ng.ext.parse = parse  # moto.events.utils imports it at every call
    sfn_json_path.parse = parse  # imported once by the Step Functions executor
