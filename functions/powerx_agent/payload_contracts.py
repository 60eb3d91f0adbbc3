"""Event-type contracts: the JSON Schema of each event type's ``payload`` (``config/event-types/``).

Ingest rejects a payload that breaks its type's schema (``payload.schema_violation``: DLQ, audit, metric),
``strategy test`` shows the same rejection, and ``strategy lint`` warns on a path the schema says cannot
exist. A type without a schema file is not checked here (its envelope still is).

The validator implements the subset of JSON Schema (draft 2020-12) the contracts use and refuses any other
keyword when a schema is loaded, so nothing is silently ignored: ``type``, ``properties``, ``required``,
``additionalProperties`` (a boolean), ``items``, ``enum``, ``const``, ``minLength`` / ``maxLength``,
``minimum`` / ``maximum``, ``minItems`` / ``maxItems``, ``maxProperties``, ``pattern`` (RE2: linear time, no
backtracking) and the annotations ``$schema``, ``$id``, ``title``, ``description``, ``examples``. It is
bounded by the schema, not by the payload: it only descends where the schema has ``properties`` or
``items`` (at most :data:`MAX_SCHEMA_DEPTH` levels), stops after :data:`MAX_VIOLATIONS` violations, and the
payload reaching it is already within the envelope's size and depth limits. Pure domain: no AWS here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2

MAX_SCHEMA_DEPTH = 16
MAX_VIOLATIONS = 10
MAX_SCHEMA_BYTES = 64 * 1024
SCHEMA_SUFFIX = ".schema.json"
CODE = "payload.schema_violation"
_ANNOTATIONS = {"$schema", "$id", "title", "description", "examples"}
_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "minLength",
             "maxLength", "minimum", "maximum", "minItems", "maxItems", "maxProperties", "pattern"} | _ANNOTATIONS
_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


class ContractError(ValueError):
    """A schema file that is not a contract this module can apply (refused when loaded)."""


@dataclass(frozen=True)
class Violation:
    path: tuple[str | int, ...]  # inside the payload
    message: str

    @property
    def where(self) -> str:
        """The field in the event, as ingest reports it: ``detail.payload.job.id``."""
        return "detail.payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_schema(schema: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise ContractError(f"{where}: nested deeper than {MAX_SCHEMA_DEPTH} levels")
    if not isinstance(schema, dict):
        raise ContractError(f"{where}: a schema is an object")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ContractError(f"{where}: keyword(s) {sorted(unknown)} not supported by the contract validator")
    types = schema.get("type")
    for t in ([types] if isinstance(types, str) else types or []):
        if t not in _TYPES:
            raise ContractError(f"{where}.type: {t!r} is not a JSON Schema type")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        raise ContractError(f"{where}.additionalProperties: only true or false")
    if "pattern" in schema:
        try:
            re2.compile(schema["pattern"])
        except re2.error as exc:
            raise ContractError(f"{where}.pattern: {exc}") from None
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{where}.properties.{name}", depth + 1)
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items", depth + 1)


class Contract:
    def __init__(self, event_type: str, schema: dict[str, Any], source: str = "") -> None:
        _check_schema(schema, source or event_type)
        self.event_type = event_type
        self.schema = schema
        self.source = source
        self._patterns: dict[str, Any] = {}

    # -- validation -------------------------------------------------------------------------
    def violations(self, payload: Any) -> list[Violation]:
        found: list[Violation] = []
        self._check(self.schema, payload, (), found)
        return found

    def _check(self, schema: dict[str, Any], value: Any, path: tuple[str | int, ...], found: list[Violation]) -> None:
        if len(found) >= MAX_VIOLATIONS:
            return

        def fail(message: str) -> None:
            if len(found) < MAX_VIOLATIONS:
                found.append(Violation(path, message))

        actual = _type_of(value)
        wanted = schema.get("type")
        if wanted is not None:
            allowed = [wanted] if isinstance(wanted, str) else list(wanted)
            if actual not in allowed and not (actual == "integer" and "number" in allowed):
                fail(f"is {actual}, the contract wants {' or '.join(allowed)}")
                return
        if "const" in schema and value != schema["const"]:
            fail(f"must be {json.dumps(schema['const'])}")
        if "enum" in schema and value not in schema["enum"]:
            fail(f"must be one of {json.dumps(schema['enum'])[:200]}")
        if actual == "string":
            if "minLength" in schema and len(value) < schema["minLength"]:
                fail(f"is shorter than {schema['minLength']} character(s)")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                fail(f"is longer than {schema['maxLength']} characters")
            if "pattern" in schema and not self._pattern(schema["pattern"]).search(value):
                fail(f"does not match {schema['pattern']}")
        elif actual in ("integer", "number"):
            if not math.isfinite(value):
                fail("is not a finite number")
            elif "minimum" in schema and value < schema["minimum"]:
                fail(f"is below {schema['minimum']}")
            elif "maximum" in schema and value > schema["maximum"]:
                fail(f"is above {schema['maximum']}")
        elif actual == "array":
            if "minItems" in schema and len(value) < schema["minItems"]:
                fail(f"has fewer than {schema['minItems']} item(s)")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                fail(f"has more than {schema['maxItems']} items")
            elif "items" in schema:
                for i, item in enumerate(value):
                    self._check(schema["items"], item, (*path, i), found)
        elif actual == "object":
            properties = schema.get("properties") or {}
            if "maxProperties" in schema and len(value) > schema["maxProperties"]:
                fail(f"has more than {schema['maxProperties']} fields")
            for name in schema.get("required", []):
                if name not in value:
                    found.append(Violation((*path, name), "is required by the contract and missing")) \
                        if len(found) < MAX_VIOLATIONS else None
            if schema.get("additionalProperties") is False:
                for name in value:
                    if name not in properties:
                        found.append(Violation((*path, name), "is not a field of this event type's payload")) \
                            if len(found) < MAX_VIOLATIONS else None
            for name, sub in properties.items():
                if name in value:
                    self._check(sub, value[name], (*path, name), found)

    def _pattern(self, pattern: str) -> Any:
        compiled = self._patterns.get(pattern)
        if compiled is None:
            compiled = self._patterns[pattern] = re2.compile(pattern)
        return compiled

    # -- static reasoning (strategy lint) -------------------------------------------------
    def impossible(self, keys: tuple[str | int, ...]) -> str | None:
        """Why a path below ``payload`` (its keys) cannot exist in a valid payload, or None if it can."""
        schema: dict[str, Any] | None = self.schema
        for depth, key in enumerate(keys):
            if schema is None:
                return None
            here = "payload" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys[:depth])
            types = schema.get("type")
            allowed = [types] if isinstance(types, str) else list(types or [])
            if isinstance(key, int):
                if allowed and "array" not in allowed:
                    return f"{here} is {' or '.join(allowed)}, not an array"
                schema = schema.get("items")
                continue
            if allowed and "object" not in allowed:
                return f"{here} is {' or '.join(allowed)}: it has no field {key!r}"
            properties = schema.get("properties") or {}
            if key in properties:
                schema = properties[key]
            elif schema.get("additionalProperties") is False:
                return f"{here} has no field {key!r} (fields: {', '.join(sorted(properties)) or 'none'})"
            else:
                return None  # an open object: any further field may be there
        return None


def load_contracts(directory: str | Path | None) -> dict[str, Contract]:
    """Every ``<event type>.schema.json`` of a directory; {} without a directory. A directory that does not
    exist is refused: a misconfigured location must not switch the contracts off unnoticed."""
    if directory is None:
        return {}
    folder = Path(directory)
    if not folder.is_dir():
        raise ContractError(f"{folder}: no such directory of event-type contracts")
    contracts = {}
    for path in sorted(folder.glob(f"*{SCHEMA_SUFFIX}")):
        if path.stat().st_size > MAX_SCHEMA_BYTES:
            raise ContractError(f"{path.name}: larger than {MAX_SCHEMA_BYTES} bytes")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ContractError(f"{path.name}: not JSON ({exc})") from None
        event_type = path.name.removesuffix(SCHEMA_SUFFIX)
        contracts[event_type] = Contract(event_type, schema, source=path.name)
    return contracts


def default_directory() -> Path | None:
    """The checkout's ``config/event-types``, or None outside a checkout. On Lambda, ingest reads the code
    asset's copy (``EVENT_CONTRACTS_DIR=/var/task/event-types``, staged by ``infra/components/functions.py``)."""
    candidate = Path(__file__).resolve().parents[2] / "config" / "event-types"
    return candidate if candidate.is_dir() else None
