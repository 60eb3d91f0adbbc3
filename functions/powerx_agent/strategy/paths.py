"""JSONPath for conditions and variables, parsed once at load (docs/strategies.md).

Every expression is parsed with jsonpath-ng (its extended grammar, so filters such as
``$.items[?(@.qty > 1)]`` are accepted) when the strategy is loaded. Simple chains of names and
non-negative indices (``$.payload.job.id``, ``$.items[0].sku``, ``$['detail-type']``) then get a
tuple-of-keys getter, so evaluating them costs a few dict lookups and never touches jsonpath-ng.

Result of :meth:`CompiledPath.get`:

* a *simple* path returns the one value it points at (which may be ``None`` for a JSON ``null``)
  or :data:`MISSING` when any step is absent (a missing key, an index past the end, a key on a
  list, an index on an object, a step into a scalar);
* any other path (wildcards ``[*]``/``.*``, slices, negative indices, ``..``, filters, unions)
  returns the **list** of every matched value, in document order, or :data:`MISSING` when nothing
  matched.

Bounded by construction: lint refuses every part of jsonpath-ng's extended grammar whose cost is
not bounded by the size of the event (:func:`check_bounded`):

* ``=~`` regex filters (``path.regex_filter``): Python's backtracking ``re``; use a ``matches``
  condition, which runs RE2;
* arithmetic ``+ - * /`` (``path.arithmetic``): ``"AAAA" * 2e9`` builds gigabytes;
* ``sub()``, ``split()``, ``str()`` (``path.string_function``): they build strings (``sub()`` with a
  backtracking regex);
* ``&`` intersections (``path.unsupported``): jsonpath-ng does not implement them;
* more than one ``..`` (``path.too_complex``): each nested ``..`` multiplies the walk by the event's
  size;
* more than :data:`MAX_BRANCHES` alternatives in all (``path.too_complex``): the alternatives of
  unions (``|``, ``['a','b']``, ``[0,1]``) multiply along the path, and the same value is matched
  once per alternative: ``$.a['b','b']['b','b']...`` over 24 nested levels selects 2^24 copies;
* ``parent`` (``path.too_complex``): it selects a value once per child it was reached from, so
  ``[*].`parent`[*]`` squares the walk at every repetition.

What remains (names, indices, slices, ``*``, one ``..``, a few alternatives, ``where``, filters
comparing with ``== != < <= > >=``, ``&&``/``||``/``!``, ``len``, ``keys``, ``path``, ``sorted``,
``this``) costs at most a few walks of an event whose depth the envelope already bounds.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any

from powerx_agent.errors import StrategyError

MAX_PATH_CHARS = 512
"""Longest JSONPath expression accepted."""


class _Missing:
    """The value of a path that points at nothing (distinct from JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_STEP = re.compile(rf"\.({_NAME})|\[(\d+)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]")


def _simple_keys(expr: str) -> tuple[str | int, ...] | None:
    """``$.a.b[0]['c d']`` → ``("a", "b", 0, "c d")``; ``None`` if the path is not a plain chain."""
    if not expr.startswith("$"):
        return None
    keys: list[str | int] = []
    pos = 1
    while pos < len(expr):
        match = _STEP.match(expr, pos)
        if match is None:
            return None
        name, index, single, double = match.groups()
        if name is not None:
            keys.append(name)
        elif index is not None:
            if len(index) > 1 and index.startswith("0"):
                return None
            keys.append(int(index))
        else:
            keys.append(single if single is not None else double)
        pos = match.end()
    return tuple(keys)


class CompiledPath:
    """A JSONPath expression compiled once; :meth:`get` returns :data:`MISSING` when absent."""

    __slots__ = ("expr", "keys", "_jsonpath")

    def __init__(self, expr: str, keys: tuple[str | int, ...] | None, jsonpath: Any) -> None:
        self.expr = expr
        self.keys = keys  # None unless the path is a simple chain
        self._jsonpath = jsonpath

    @property
    def is_simple(self) -> bool:
        """True when the path is a plain chain of names and indices (one value or MISSING)."""
        return self.keys is not None

    def get(self, doc: Any) -> Any:
        keys = self.keys
        if keys is not None:
            value = doc
            for key in keys:
                if isinstance(key, str):
                    if not isinstance(value, dict):
                        return MISSING
                    try:
                        value = value[key]
                    except KeyError:
                        return MISSING
                else:
                    if not isinstance(value, list) or key >= len(value):
                        return MISSING
                    value = value[key]
            return value
        try:
            found = [match.value for match in self._jsonpath.find(doc)]
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            return MISSING
        return found if found else MISSING

    def __repr__(self) -> str:
        return f"CompiledPath({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledPath) and other.expr == self.expr

    def __hash__(self) -> int:
        return hash(self.expr)


MAX_DESCENDANTS = 1
"""Most ``..`` steps in one path (filters included)."""

MAX_BRANCHES = 16
"""Most alternatives one path may multiply to: the product, over every union in the path (filters
included), of its number of alternatives (``['a','b','c']`` counts 3, ``[0,1]`` 2, ``a|b`` 2)."""


def _refusal(code: str, message: str) -> StrategyError:
    return StrategyError(message, code=code)


def _bounded_types() -> tuple[dict[type, None], dict[type, tuple[str, str]]]:
    from jsonpath_ng import jsonpath as core
    from jsonpath_ng.ext import arithmetic, filter, iterable, string

    allowed = dict.fromkeys((core.Root, core.This, core.Child, core.Parent, core.Where, core.WhereNot,
                             core.Descendants, core._Union, core.Fields, core.Wildcard, core.Index, core.Slice,
                             filter.Filter, filter.Expression, filter.And, filter.Or,
                             iterable.Len, iterable.Keys, iterable.Path, iterable.SortedThis))
    refused = {
        arithmetic.Operation: ("path.arithmetic", "arithmetic (+ - * /) in a path can build unbounded values "
                               "(a string times a large number); compare with gt/lt/equals instead"),
        string.Sub: ("path.string_function", "sub() builds strings with Python's backtracking regex engine; "
                     "match the value with a 'matches' condition (RE2) instead"),
        string.Split: ("path.string_function", "split() builds strings and lists from the value; use prefix, "
                       "suffix, contains or matches conditions instead"),
        string.Str: ("path.string_function", "str() builds strings from any value; compare the value itself"),
        core._Intersect: ("path.unsupported", "'&' (intersection) is not implemented by the JSONPath engine"),
    }
    return allowed, refused


def check_bounded(tree: Any) -> None:
    """Refuse every node of a parsed JSONPath whose cost is not bounded (see the module docstring)."""
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.jsonpath import Descendants, Fields, Index, JSONPath, Parent, _Union

    allowed, refused = _bounded_types()
    descendants = 0
    branches = 1
    stack = [tree]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind in refused:
            code, message = refused[kind]
            raise _refusal(code, message)
        if kind not in allowed:
            raise _refusal("path.unsupported", f"'{node}' ({kind.__name__}) is not a supported JSONPath part")
        if kind is Expression and node.op == "=~":
            raise _refusal("path.regex_filter", "'=~' filters run Python's backtracking regex engine on event "
                           "values; use a 'matches' condition (RE2, linear time) on the value instead")
        if kind is Descendants:
            descendants += 1
            if descendants > MAX_DESCENDANTS:
                raise _refusal("path.too_complex", f"a path may hold at most {MAX_DESCENDANTS} '..' (each more "
                               "one multiplies the walk by the size of the event)")
        if kind is Parent:
            raise _refusal("path.too_complex", "'`parent`' selects a value once for every child it was reached "
                           "from (after a wildcard, once per element); name the value's own path instead")
        branches *= (len(node.fields) if kind is Fields else len(node.indices) if kind is Index
                     else 2 if kind is _Union else 1)
        if branches > MAX_BRANCHES:
            raise _refusal("path.too_complex", f"the path's alternatives (unions, ['a','b'], [0,1]) multiply to "
                           f"more than {MAX_BRANCHES}: each one matches the same values again")
        for value in vars(node).values():
            items = value if isinstance(value, list | tuple) else (value,)
            for item in items:
                for part in (item if isinstance(item, tuple) else (item,)):
                    if isinstance(part, JSONPath):
                        stack.append(part)


@lru_cache(maxsize=4096)
def _parse(expr: str) -> Any:
    from jsonpath_ng.ext import parse

    try:
        with warnings.catch_warnings():  # deprecated spellings are still parsed; lint reports what matters
            warnings.simplefilter("ignore", DeprecationWarning)
            return parse(expr)
    except Exception as exc:  # jsonpath-ng raises JsonPathLexerError/ParserError, ply plain Exception
        raise StrategyError(f"'{expr}' is not a valid JSONPath: {exc}", code="path.invalid") from None


def compile_path(expr: str, where: str | None = None) -> CompiledPath:
    """Parse ``expr`` once. Raises ``StrategyError(code="path.invalid")`` with ``where``."""
    if not isinstance(expr, str):
        raise StrategyError(f"a path must be a string like $.payload.id, got {type(expr).__name__}",
                            code="path.invalid", where=where)
    if len(expr) > MAX_PATH_CHARS:
        raise StrategyError(f"path of {len(expr)} characters exceeds the limit of {MAX_PATH_CHARS}",
                            code="path.invalid", where=where)
    if not expr.startswith("$"):
        raise StrategyError(f"'{expr}' is not a JSONPath: it must start with '$' (e.g. $.payload.id)",
                            code="path.invalid", where=where)
    keys = _simple_keys(expr)
    if keys is not None:  # a plain chain never needs jsonpath-ng (whose parse costs ~2 ms a path)
        return CompiledPath(expr, keys, None)
    try:
        jsonpath = _parse(expr)
    except StrategyError as exc:
        raise StrategyError(exc.message, code="path.invalid", where=where) from None
    try:
        check_bounded(jsonpath)
    except StrategyError as exc:
        raise StrategyError(f"'{expr[:120]}': {exc.message}", code=exc.code, where=where) from None
    return CompiledPath(expr, keys, jsonpath)
