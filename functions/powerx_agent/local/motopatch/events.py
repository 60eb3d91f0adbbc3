"""Patch 2 (see the package's docstring): EventBridge rules hand Lambda targets to the runtime's
asynchronous invoker; moto delivers every other target type itself."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

_state: dict[str, Any] = {"rule_lambda_target": None}  # set by apply(), on every call


def set_rule_lambda_target(deliver: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    _state["rule_lambda_target"] = deliver


def patch_rule_targets() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        lambda_targets = [t for t in self.targets if ":lambda:" in t["Arn"]]
        others = [t for t in self.targets if ":lambda:" not in t["Arn"]]
        if lambda_targets and self.event_pattern.matches_event(original_event):
            event = dict(original_event)
            if isinstance(event.get("time"), int | float):
                event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
            event.pop("ingestion-time", None)
            for target in lambda_targets:
                _state["rule_lambda_target"](target, event)
        if others:
            clone = copy.copy(self)
            clone.targets = others
            original(clone, original_event, transform_input)

    Rule.send_to_targets = send_to_targets
