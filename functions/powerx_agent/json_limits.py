"""Limits on JSON from outside, checked before anything recursive touches it.

Every JSON value that enters the engine (an event on the bus, a replay or callback body, the file
of ``strategy test --event``) is checked here first, in time linear in its size and without
recursion:

* **depth**: at most :data:`MAX_DEPTH` nested objects/arrays. Raw text is pre-scanned for bracket
  depth before ``json.loads`` (whose decoder recurses); parsed values are walked with an explicit
  stack before pydantic, ``json.dumps`` or boto3 (all recursive) see them. DynamoDB stores
  at most 32 levels; the engine wraps event values in up to 8 levels of its own (an audit record's
  ``data.variables.<name>``, a node's ``output``), hence 24.
* **numbers**: finite, and storable by DynamoDB exactly as written: at most 38 significant digits,
  magnitude 1E-130 to 9.99…E+125 (or zero). ``NaN``, ``Infinity`` and ``1e999`` are refused.
* **strings**: valid Unicode (no lone surrogate such as ``"\\ud800"``, which UTF-8 cannot encode).

A refusal is a :class:`JsonLimitError` with a ``kind`` (``too_deep``, ``invalid_number``,
``invalid_string``, ``invalid_json``) and ``where``, the JSON path of the offending value; callers
turn it into their own error code (``envelope.too_deep``, ``callback.invalid_number``, ...).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_DEPTH = 24
"""Deepest nesting of objects and arrays accepted (the outermost object counts as 1)."""

MAX_DIGITS = 38
"""Most significant digits of a number (DynamoDB's precision)."""

MIN_EXPONENT = -130
MAX_EXPONENT = 125
"""Range of a number's decimal exponent, as DynamoDB stores numbers (1E-130 to 9.99…E+125)."""

_INT_SAFE = 10 ** MAX_DIGITS  # below this, an int always fits
_INT_BITS = 420  # 2 ** 420 > 1E+126: an int with more bits is out of range without printing it

__all__ = ["JsonLimitError", "MAX_DEPTH", "check_value", "dumps", "loads", "raw_depth_exceeds",
           "utf8_size"]


class JsonLimitError(ValueError):
    """A JSON value beyond the limits: ``kind`` says which, ``where`` points at it."""

    def __init__(self, kind: str, message: str, where: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where


# --------------------------------------------------------------------------------------------
# raw text: bracket depth before parsing
# --------------------------------------------------------------------------------------------

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = bytes.maketrans(b"[{]}", b"(())")


def raw_depth_exceeds(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests objects/arrays deeper than ``limit``, without parsing it.

    Strings are cut out first (brackets inside them do not count): escaped backslashes and escaped
    quotes are dropped, then every other piece between quotes is outside a string. Then everything
    but brackets goes.
    Each pass of ``replace("()", "")`` removes one level of balanced nesting, so text nested at
    most ``limit`` deep is gone after ``limit`` passes. Only when something is left (deep or
    unbalanced text) is the depth counted bracket by bracket. Linear in the size: bytes operations
    only, no recursion, no backtracking.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[0::2]).translate(_OPENERS, _NOT_BRACKETS)
    left = brackets
    for _ in range(limit):
        shorter = left.replace(b"()", b"")
        if len(shorter) == len(left):
            break
        left = shorter
    if not left:
        return False
    depth = 0
    for byte in brackets:
        depth += 1 if byte == 40 else -1
        if depth > limit:
            return True
    return False


def loads(raw: bytes | str, *, root: str = "$", max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` within the limits: depth pre-scanned on the text, numbers checked as
    written (before any conversion), ``NaN``/``Infinity`` refused, strings checked for lone
    surrogates. Every refusal names the path of the offending value."""
    if raw_depth_exceeds(raw, max_depth):
        raise JsonLimitError("too_deep", f"the JSON nests objects and arrays deeper than {max_depth} levels",
                             root)
    try:
        value = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_BadNumber)
    except RecursionError:  # unbalanced text the pre-scan could not rule out
        raise JsonLimitError("too_deep", f"the JSON nests deeper than {max_depth} levels", root) from None
    except ValueError as exc:
        raise JsonLimitError("invalid_json", f"not valid JSON: {exc}", root) from None
    check_value(value, root=root, max_depth=max_depth)
    return value


class _BadNumber:
    """A number literal DynamoDB cannot hold, kept as text until check_value names its path."""

    __slots__ = ("text", "problem")

    def __init__(self, text: str, problem: str | None = None) -> None:
        self.text = text
        self.problem = problem or "is not a JSON number (NaN and Infinity are not JSON)"

    def describe(self) -> str:
        shown = self.text if len(self.text) <= 40 else f"{self.text[:20]}…({len(self.text)} characters)"
        return f"the number {shown} {self.problem}"


def _parse_int(text: str) -> int | _BadNumber:
    if len(text) <= MAX_DIGITS:
        return int(text)
    if len(text.lstrip("-")) > MAX_EXPONENT + 1:
        return _BadNumber(text, "is out of the range DynamoDB stores (1E-130 to 9.99E+125 in magnitude)")
    problem = _decimal_problem(Decimal(text))
    return _BadNumber(text, problem) if problem else int(text)


def _parse_float(text: str) -> float | _BadNumber:
    if len(text) > 400:
        return _BadNumber(text, "is too long to be a number DynamoDB stores")
    problem = _decimal_problem(Decimal(text))
    return _BadNumber(text, problem) if problem else float(text)


def _decimal_problem(d: Decimal) -> str | None:
    if not d.is_finite():
        return "is not a finite number"
    if d.is_zero():
        return None
    digits = "".join(map(str, d.as_tuple().digits)).strip("0")
    if len(digits) > MAX_DIGITS:
        return f"has more than {MAX_DIGITS} significant digits (DynamoDB stores 38)"
    if not MIN_EXPONENT <= d.adjusted() <= MAX_EXPONENT:
        return "is out of the range DynamoDB stores (1E-130 to 9.99E+125 in magnitude)"
    return None


def number_problem(value: int | float | Decimal) -> str | None:
    """Why DynamoDB could not store this number exactly, or None when it can."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if -_INT_SAFE < value < _INT_SAFE:
            return None
        if value.bit_length() > _INT_BITS:
            return "is out of the range DynamoDB stores (1E-130 to 9.99E+125 in magnitude)"
        return _decimal_problem(Decimal(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "is not a finite number (NaN and Infinity are not JSON)"
        return _decimal_problem(Decimal(repr(value)))
    try:
        return _decimal_problem(Decimal(value))
    except (InvalidOperation, TypeError, ValueError):
        return "is not a number"


# --------------------------------------------------------------------------------------------
# parsed values: one explicit-stack walk
# --------------------------------------------------------------------------------------------

def _key_path(parent: str, key: str) -> str:
    if key.isidentifier() and len(key) <= 64:
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key[:64], ensure_ascii=True)}]"


def _render_where(root: str, chain: Any) -> str:
    """The path of a value from its chain ``(parent chain, key)`` (built only for a refused value)."""
    keys: list[Any] = []
    while chain is not None:
        chain, key = chain
        keys.append(key)
    where = root
    for key in reversed(keys):
        where = f"{where}[{key}]" if isinstance(key, int) else _key_path(where, key)
    return where


def check_value(value: Any, *, root: str = "$", max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed value with an explicit stack (no recursion) and refuse the first value beyond
    the limits, naming its path (``detail.payload.items[3].qty``). Scalars are checked where they
    are found, and a path is spelled out only for the value refused: a 256 KiB event of ~130,000
    values costs one pass of cheap type checks."""
    safe = _INT_SAFE
    stack: list[tuple[Any, Any, int]] = [(value, None, 1)]
    while stack:
        node, chain, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list | tuple):
            items = enumerate(node)
        else:
            _check_scalar(node, root, chain)
            continue
        if depth > max_depth:
            raise JsonLimitError("too_deep", f"nested deeper than {max_depth} levels of objects and arrays",
                                 _render_where(root, chain))
        keyed = isinstance(node, dict)
        for key, item in items:
            if keyed:
                if type(key) is not str:
                    raise JsonLimitError("invalid_json", f"object key {key!r} is not a string",
                                         _render_where(root, chain))
                if not key.isascii():
                    _check_string(key, _render_where(root, chain))
            kind = type(item)
            if kind is str:
                if item.isascii():
                    continue
            elif kind is int:
                if -safe < item < safe:
                    continue
            elif item is None or kind is bool:
                continue
            elif kind is dict or kind is list or isinstance(item, dict | list | tuple):
                stack.append((item, (chain, key), depth + 1))
                continue
            _check_scalar(item, root, (chain, key))


def _check_scalar(node: Any, root: str, chain: Any) -> None:
    if isinstance(node, str):
        _check_string(node, _render_where(root, chain))
    elif isinstance(node, _BadNumber):
        raise JsonLimitError("invalid_number", node.describe(), _render_where(root, chain))
    elif isinstance(node, int | float | Decimal) and not isinstance(node, bool):
        problem = number_problem(node)
        if problem:
            shown = "a number" if isinstance(node, int) and node.bit_length() > 200 else repr(node)
            raise JsonLimitError("invalid_number", f"{shown} {problem}", _render_where(root, chain))
    elif node is not None and not isinstance(node, bool):
        raise JsonLimitError("invalid_json", f"{type(node).__name__} is not a JSON value", _render_where(root, chain))


def _check_string(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonLimitError("invalid_string", f"the string holds a lone surrogate at character {exc.start} "
                             "(not valid Unicode, and not storable as UTF-8)", where) from None


# --------------------------------------------------------------------------------------------
# serialising and measuring
# --------------------------------------------------------------------------------------------

def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8, as EventBridge counts an entry's Source, DetailType and Detail."""
    return len(text.encode("utf-8", "surrogatepass"))


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON of any value, however deep, without recursion (for keeping what was refused:
    a rejected event goes to the DLQ whole). Non-JSON values are written as their ``str``."""
    out: list[str] = []
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=True).encode
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, _Raw):
            out.append(node.text)
        elif isinstance(node, dict):
            items = sorted(node.items(), key=lambda kv: str(kv[0])) if sort_keys else list(node.items())
            parts: list[Any] = [_Raw("{")]
            for i, (key, item) in enumerate(items):
                parts.append(_Raw(("," if i else "") + encode(str(key)) + ":"))
                parts.append(item)
            parts.append(_Raw("}"))
            stack.extend(reversed(parts))
        elif isinstance(node, list | tuple):
            parts = [_Raw("[")]
            for i, item in enumerate(node):
                if i:
                    parts.append(_Raw(","))
                parts.append(item)
            parts.append(_Raw("]"))
            stack.extend(reversed(parts))
        elif node is None or isinstance(node, bool | int | float | str):
            if isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 10_000:
                out.append(encode(f"<int of {node.bit_length()} bits>"))
            else:
                out.append(encode(node))
        else:
            out.append(encode(str(node)))
    return "".join(out)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
