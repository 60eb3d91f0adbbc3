"""Redaction of sensitive values in logs, audit records and decision records (docs/strategies.md, "Redaction").

Default policy (:data:`DEFAULT_POLICY`):

* a mapping value whose **key** matches (case-insensitive, anywhere in the key)
  ``password|passwd|secret|token|authorization|api[_-]?key|credential|ssn|card|email|phone``
  is replaced by ``"***"`` (whatever its type: a whole sub-object under ``credentials`` goes);
* strings longer than 256 characters are cut to 256 and get the marker
  ``"…[truncated N chars]"`` (N = characters removed);
* structures deeper than 32 levels are replaced by ``"<too deep>"`` below that level, and lists
  longer than 1000 items keep their first 1000 items plus a ``"…[N more items]"`` marker;
* everything else (numbers, booleans, null, keys) is kept.

Redaction never mutates its input; it returns new containers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SENSITIVE_KEY_PATTERN = r"password|passwd|secret|token|authorization|api[_-]?key|credential|ssn|card|email|phone"
MASK = "***"


@dataclass(frozen=True)
class RedactionPolicy:
    key_pattern: re.Pattern[str] = re.compile(SENSITIVE_KEY_PATTERN, re.IGNORECASE)
    mask: str = MASK
    max_string: int = 256
    max_depth: int = 32
    max_items: int = 1000

    def sensitive(self, key: Any) -> bool:
        return isinstance(key, str) and self.key_pattern.search(key) is not None

    @classmethod
    def with_extra_keys(cls, *patterns: str) -> RedactionPolicy:
        """The default policy plus more key patterns (regular expressions, case-insensitive)."""
        joined = "|".join((SENSITIVE_KEY_PATTERN, *patterns))
        return cls(key_pattern=re.compile(joined, re.IGNORECASE))


DEFAULT_POLICY = RedactionPolicy()


def _truncate(text: str, policy: RedactionPolicy) -> str:
    if len(text) <= policy.max_string:
        return text
    return f"{text[:policy.max_string]}…[truncated {len(text) - policy.max_string} chars]"


def redact(value: Any, policy: RedactionPolicy | None = None) -> Any:
    """A copy of ``value`` with sensitive keys masked and long strings truncated."""
    return _redact(value, policy or DEFAULT_POLICY, 0)


def _redact(value: Any, policy: RedactionPolicy, depth: int) -> Any:
    if isinstance(value, str):
        return _truncate(value, policy)
    if isinstance(value, Mapping | list | tuple) and depth >= policy.max_depth:
        return "<too deep>"
    if isinstance(value, Mapping):
        return {key: policy.mask if policy.sensitive(key) else _redact(item, policy, depth + 1)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_redact(item, policy, depth + 1) for item in value[: policy.max_items]]
        if len(value) > policy.max_items:
            items.append(f"…[{len(value) - policy.max_items} more items]")
        return items
    return value
