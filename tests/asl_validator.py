"""Validate ASL definitions with npm ``asl-validator`` (node_modules/.bin), many per process.

``make test`` installs node_modules (``make setup-node``). A missing validator is an error, not a
skip: generated ASL must be validated (docs/taskflow.md).

Usage from a test module::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/
    from asl_validator import assert_valid, validate_definitions
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
_INVALID = "\u2715 State machine definition \""  # "✕ State machine definition "<name>" is invalid:"
_VALID = "\u2713 State machine definition \""


class ValidatorMissing(RuntimeError):
    pass


def _require_validator() -> Path:
    if not VALIDATOR.exists():
        raise ValidatorMissing(
            f"{VALIDATOR} is missing: run `make setup-node` (or `npm install` in {REPO}); "
            "generated ASL must be validated, so these tests do not skip")
    return VALIDATOR


def validate_definitions(definitions: Mapping[str, dict[str, Any] | str]) -> dict[str, list[str]]:
    """Validate every definition in one ``asl-validator`` process.

    ``definitions`` maps a label to a definition (dict or JSON text). Returns label → list of
    error lines (empty when valid). Raises when the validator cannot run or skips a definition.
    """
    validator = _require_validator()
    if not definitions:
        return {}
    with tempfile.TemporaryDirectory(prefix="asl-validate-") as tmp:
        files: dict[str, str] = {}
        args = [str(validator)]
        for i, (label, definition) in enumerate(definitions.items()):
            path = Path(tmp) / f"definition-{i:05d}.json"
            text = definition if isinstance(definition, str) else json.dumps(definition)
            path.write_text(text, encoding="utf-8")
            files[str(path)] = label
            args += ["--json-path", str(path)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"asl-validator failed to run (exit {proc.returncode}):\n{proc.stderr}")
    results: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(_VALID):
            path = line[len(_VALID):].split('"', 1)[0]
            results[files[path]] = []
    for chunk in proc.stderr.split(_INVALID)[1:]:
        path, _, rest = chunk.partition('"')
        errors = [e.strip() for e in rest.splitlines()[1:] if e.strip()]
        results[files[path]] = errors or [rest.strip()]
    missing = [label for label in definitions if label not in results]
    if missing:
        raise RuntimeError(f"asl-validator reported nothing for {missing}:\n{proc.stdout}\n{proc.stderr}")
    return results


def assert_valid(definitions: Mapping[str, dict[str, Any] | str] | Sequence[dict[str, Any]]) -> None:
    """Fail with every validator message when any definition is invalid."""
    if not isinstance(definitions, Mapping):
        definitions = {f"definition #{i}": d for i, d in enumerate(definitions)}
    results = validate_definitions(definitions)
    bad = {label: errors for label, errors in results.items() if errors}
    assert not bad, "asl-validator rejected definitions:\n" + "\n".join(
        f"- {label}: " + "; ".join(errors) for label, errors in bad.items())
