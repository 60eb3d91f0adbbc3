"""``when:`` conditions, compiled once at load and evaluated without exceptions (docs/strategies.md).

A condition is a leaf ``{path: <JSONPath>, <operator>: <operand>}`` or a combination
``{all: [...]}``, ``{any: [...]}``, ``{not: <condition>}``, nested up to :data:`MAX_DEPTH` levels.
The document evaluated is ``{**detail, "event_type": <detail-type>}``.

Exact semantics (also in docs/strategies.md):

* Types are strict. A string never equals a number (``"1" != 1``), a boolean is not a number
  (``true != 1``), ``null`` equals only ``null``; ``1 == 1.0`` (both numbers). Lists and objects
  compare element by element with the same rules.
* ``gt``/``gte``/``lt``/``lte`` compare numbers only (int or float, never bool); on anything else
  (string, bool, null, list, object, missing) they are False.
* ``in``: the value is a scalar strictly equal to one item of the list. A list value is not "in".
* ``contains``: a list value has an item strictly equal to the operand, or a string value has the
  operand (a string) as a substring. Anything else is False.
* ``prefix``/``suffix``/``matches`` apply to string values only; ``matches`` is a full match of an
  RE2 pattern (linear time, compiled at load).
* ``exists: true`` is True when the path resolves (even to ``null``); ``exists: false`` when it
  does not.
* A missing path makes every operator False except ``not_equals``, ``not_in`` and
  ``exists: false``, which are True. ``not_equals`` and ``not_in`` are always the exact negation
  of ``equals`` and ``in``.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.paths import MISSING, CompiledPath, compile_path

MAX_DEPTH = 32
"""Deepest nesting of all/any/not accepted."""

MAX_REGEX_CHARS = 512
"""Longest ``matches`` pattern accepted."""

MAX_IN_ITEMS = 10_000
"""Longest ``in``/``not_in`` list accepted."""

MISSING_TEXT = "<missing>"

OPERATORS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "exists",
             "prefix", "suffix", "contains", "matches")
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True)
class Failure:
    """Why a condition did not match: the first failing leaf."""

    path: str
    op: str
    expected: Any
    actual: Any  # the value found, or "<missing>"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "expected": self.expected, "actual": self.actual}


# --- strict value semantics -------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """int or float, never bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def strict_equals(left: Any, right: Any) -> bool:
    """Equality without Python's coercions: ``"1" != 1``, ``True != 1``; ``1 == 1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if is_number(left) or is_number(right):
        return is_number(left) and is_number(right) and left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(strict_equals(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(strict_equals(left[k], right[k]) for k in left)
    return False


def _type_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key such that equal keys ⇔ strict_equals for scalars; None for lists/objects."""
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return None


def type_key(value: Any) -> tuple[str, Any] | None:
    """Public name of the strict-equality key (None for lists, objects and MISSING)."""
    return _type_key(value)


def _shown(actual: Any) -> Any:
    return MISSING_TEXT if actual is MISSING else actual


# --- compiled nodes ----------------------------------------------------------------------------


class Condition(ABC):
    """A compiled condition. :meth:`evaluate` returns None when it matches, else a :class:`Failure`."""

    @abstractmethod
    def evaluate(self, doc: dict) -> Failure | None:
        """None when the document matches, else the first failing leaf."""

    def matches(self, doc: dict) -> bool:
        return self.evaluate(doc) is None

    @abstractmethod
    def witness(self, doc: dict) -> Failure:
        """For a matching condition: the leaf that made it match (used to explain ``not``)."""

    def equality_hints(self) -> dict[str, frozenset]:
        """``{path: values}`` for top-level AND-ed ``equals``/``in`` on simple paths.

        A document can only match if, for each path, its value is (strictly) one of the values.
        Hints are a pre-filter for indexes: the full condition must still be evaluated. Python
        sets treat ``1``, ``1.0`` and ``True`` as the same key, so a lookup may return a few extra
        candidates, never too few.
        """
        return {}

    def prefix_hints(self) -> dict[str, tuple[str, ...]]:
        """``{path: prefixes}`` for top-level AND-ed ``prefix`` leaves on simple paths."""
        return {}

    @abstractmethod
    def leaves(self) -> Iterator[Leaf]:
        """Every leaf of the condition, in evaluation order."""

    def conjunct_leaves(self) -> Iterator[Leaf]:
        """The leaves that must all hold for the condition to hold (AND-ed from the top), in
        evaluation order. Used with :meth:`leading_leaf` by the matcher's index."""
        return iter(())

    def leading_leaf(self) -> Leaf | None:
        """The leaf evaluated first when it is also a conjunct: if it fails, its failure is the
        condition's failure (``evaluate`` reports the first failing conjunct)."""
        return None

    def index_keys(self) -> frozenset | None:
        """For an ``equals`` (scalar) or ``in`` leaf on a simple path: the exact lookup keys (see
        :func:`type_key`) such that the leaf holds ⇔ ``type_key(value) in keys``. None otherwise.
        Unlike :meth:`equality_hints` this is exact (``1``, ``1.0`` and ``true`` stay apart)."""
        return None


class Leaf(Condition):
    __slots__ = ("path", "op", "expected", "_test", "_where")

    def __init__(self, path: CompiledPath, op: str, expected: Any, test: Any, where: str) -> None:
        self.path = path
        self.op = op
        self.expected = expected
        self._test = test
        self._where = where

    def evaluate(self, doc: dict) -> Failure | None:
        actual = self.path.get(doc)
        if self._test(actual):
            return None
        return Failure(self.path.expr, self.op, self.expected, _shown(actual))

    def matches(self, doc: dict) -> bool:
        return bool(self._test(self.path.get(doc)))

    def witness(self, doc: dict) -> Failure:
        return Failure(self.path.expr, self.op, self.expected, _shown(self.path.get(doc)))

    def equality_hints(self) -> dict[str, frozenset]:
        if not self.path.is_simple:
            return {}
        if self.op == "equals" and _type_key(self.expected) is not None:
            return {self.path.expr: frozenset([self.expected])}
        if self.op == "in":
            return {self.path.expr: frozenset(self.expected)}
        return {}

    def prefix_hints(self) -> dict[str, tuple[str, ...]]:
        if self.op == "prefix" and self.path.is_simple:
            return {self.path.expr: (self.expected,)}
        return {}

    def leaves(self) -> Iterator[Leaf]:
        yield self

    def conjunct_leaves(self) -> Iterator[Leaf]:
        yield self

    def leading_leaf(self) -> Leaf | None:
        return self

    def index_keys(self) -> frozenset | None:
        if not self.path.is_simple:
            return None
        if self.op == "equals":
            key = _type_key(self.expected)
            return None if key is None else frozenset([key])
        if self.op == "in":
            return frozenset(_type_key(item) for item in self.expected)
        return None

    def holds_for(self, value: Any) -> bool:
        """The operator's test on a value already looked up (``MISSING`` when absent)."""
        return bool(self._test(value))

    def failure_for(self, actual: Any) -> Failure:
        """The failure :meth:`evaluate` reports for a value this leaf rejects."""
        return Failure(self.path.expr, self.op, self.expected, _shown(actual))

    def __repr__(self) -> str:
        return f"Leaf({self.path.expr!r}, {self.op}={self.expected!r})"


class All(Condition):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Condition, ...]) -> None:
        self.children = children

    def evaluate(self, doc: dict) -> Failure | None:
        for child in self.children:
            failure = child.evaluate(doc)
            if failure is not None:
                return failure
        return None

    def matches(self, doc: dict) -> bool:
        return all(child.matches(doc) for child in self.children)

    def witness(self, doc: dict) -> Failure:
        return self.children[0].witness(doc)

    def equality_hints(self) -> dict[str, frozenset]:
        hints: dict[str, frozenset] = {}
        for child in self.children:
            for path, values in child.equality_hints().items():
                hints[path] = hints[path] & values if path in hints else values
        return hints

    def prefix_hints(self) -> dict[str, tuple[str, ...]]:
        hints: dict[str, tuple[str, ...]] = {}
        for child in self.children:
            for path, values in child.prefix_hints().items():
                hints[path] = hints.get(path, ()) + values
        return hints

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def conjunct_leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.conjunct_leaves()

    def leading_leaf(self) -> Leaf | None:
        return self.children[0].leading_leaf()


class Any_(Condition):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Condition, ...]) -> None:
        self.children = children

    def evaluate(self, doc: dict) -> Failure | None:
        first: Failure | None = None
        for child in self.children:
            failure = child.evaluate(doc)
            if failure is None:
                return None
            if first is None:
                first = failure
        return first

    def matches(self, doc: dict) -> bool:
        return any(child.matches(doc) for child in self.children)

    def witness(self, doc: dict) -> Failure:
        for child in self.children:
            if child.matches(doc):
                return child.witness(doc)
        return self.children[0].witness(doc)

    def equality_hints(self) -> dict[str, frozenset]:
        if len(self.children) == 1:
            return self.children[0].equality_hints()
        return {}

    def prefix_hints(self) -> dict[str, tuple[str, ...]]:
        if len(self.children) == 1:
            return self.children[0].prefix_hints()
        return {}

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def conjunct_leaves(self) -> Iterator[Leaf]:
        if len(self.children) == 1:
            yield from self.children[0].conjunct_leaves()

    def leading_leaf(self) -> Leaf | None:
        return self.children[0].leading_leaf() if len(self.children) == 1 else None


class Not(Condition):
    __slots__ = ("child",)

    def __init__(self, child: Condition) -> None:
        self.child = child

    def evaluate(self, doc: dict) -> Failure | None:
        if self.child.evaluate(doc) is not None:
            return None
        inner = self.child.witness(doc)
        return Failure(inner.path, f"not:{inner.op}", inner.expected, inner.actual)

    def matches(self, doc: dict) -> bool:
        return not self.child.matches(doc)

    def witness(self, doc: dict) -> Failure:
        inner = self.child.evaluate(doc)
        if inner is None:  # pragma: no cover - witness is only asked of matching conditions
            inner = self.child.witness(doc)
        return Failure(inner.path, f"not:{inner.op}", inner.expected, inner.actual)

    def leaves(self) -> Iterator[Leaf]:
        yield from self.child.leaves()


# --- operator tests ----------------------------------------------------------------------------


def _bad(message: str, where: str, code: str = "condition.bad_value") -> StrategyError:
    return StrategyError(message, code=code, where=where, details={"loc": _loc(where)})


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise _bad("operand nested too deeply", where, "condition.too_deep")
    if isinstance(value, float) and math.isnan(value):
        raise _bad("NaN never equals anything; use a number", where)
    if isinstance(value, list):
        for item in value:
            _check_json(item, where, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_json(item, where, depth + 1)


def _make_test(op: str, operand: Any, where: str) -> Any:
    if op in ("equals", "not_equals"):
        _check_json(operand, where)
        key = _type_key(operand)
        if key is not None:
            expected_key = key

            def eq(actual: Any) -> bool:
                return actual is not MISSING and _type_key(actual) == expected_key
        else:
            def eq(actual: Any) -> bool:
                return actual is not MISSING and strict_equals(actual, operand)
        if op == "equals":
            return eq
        return lambda actual: not eq(actual)

    if op in ("in", "not_in"):
        if not isinstance(operand, list) or not operand:
            raise _bad(f"'{op}' takes a non-empty list of values, e.g. {op}: [a, b]", where)
        if len(operand) > MAX_IN_ITEMS:
            raise _bad(f"'{op}' list has {len(operand)} items, the limit is {MAX_IN_ITEMS}", where)
        keys = set()
        for item in operand:
            key = _type_key(item)
            if key is None or (isinstance(item, float) and math.isnan(item)):
                raise _bad(f"'{op}' items must be strings, numbers, booleans or null, got {item!r}", where)
            keys.add(key)
        frozen = frozenset(keys)

        def is_in(actual: Any) -> bool:
            if actual is MISSING:
                return False
            key = _type_key(actual)
            return key is not None and key in frozen

        return is_in if op == "in" else (lambda actual: not is_in(actual))

    if op in ("gt", "gte", "lt", "lte"):
        if not is_number(operand) or math.isnan(operand):
            raise _bad(f"'{op}' compares numbers only, got {operand!r} ({type(operand).__name__})", where)
        bound = operand
        if op == "gt":
            return lambda a: is_number(a) and a > bound
        if op == "gte":
            return lambda a: is_number(a) and a >= bound
        if op == "lt":
            return lambda a: is_number(a) and a < bound
        return lambda a: is_number(a) and a <= bound

    if op == "exists":
        if not isinstance(operand, bool):
            raise _bad(f"'exists' takes true or false, got {operand!r}", where)
        if operand:
            return lambda a: a is not MISSING
        return lambda a: a is MISSING

    if op in ("prefix", "suffix"):
        if not isinstance(operand, str):
            raise _bad(f"'{op}' takes a string, got {operand!r} ({type(operand).__name__})", where)
        if op == "prefix":
            return lambda a: isinstance(a, str) and a.startswith(operand)
        return lambda a: isinstance(a, str) and a.endswith(operand)

    if op == "contains":
        key = _type_key(operand)
        if key is None or (isinstance(operand, float) and math.isnan(operand)):
            raise _bad(f"'contains' takes a string, number, boolean or null, got {operand!r}", where)

        def contains(actual: Any) -> bool:
            if isinstance(actual, list):
                return any(_type_key(item) == key for item in actual)
            if isinstance(actual, str):
                return isinstance(operand, str) and operand in actual
            return False

        return contains

    if op == "matches":
        regex = compile_regex(operand, where)
        return lambda a: isinstance(a, str) and regex.fullmatch(a) is not None

    raise _bad(f"unknown operator '{op}'", where, "condition.unknown_operator")  # pragma: no cover


def compile_regex(pattern: Any, where: str) -> Any:
    """Compile an RE2 pattern (linear-time matching) or raise ``condition.bad_regex``."""
    import re2

    if not isinstance(pattern, str):
        raise _bad(f"'matches' takes a regular expression string, got {pattern!r}", where,
                   "condition.bad_regex")
    if len(pattern) > MAX_REGEX_CHARS:
        raise _bad(f"regular expression of {len(pattern)} characters exceeds the limit of {MAX_REGEX_CHARS}",
                   where, "condition.bad_regex")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise _bad(f"'{pattern[:80]}' is not a regular expression RE2 accepts: {reason}"
                   " (RE2 has no backreferences or lookaround)", where, "condition.bad_regex") from None


# --- compiler ----------------------------------------------------------------------------------


_LOC_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _loc(where: str) -> tuple:
    """``"when.all[1].any[0].path"`` → ``("when", "all", 1, "any", 0, "path")``."""
    return tuple(int(index) if index else name for index, name in _LOC_PART.findall(where)
                 if index or name)


def compile_condition(raw: Any, where: str = "when") -> Condition:
    """Compile a ``when:`` mapping. Errors are ``StrategyError`` with a code, ``where`` (e.g.
    ``when.all[1].any[0]``) and ``details["loc"]`` (the same place as a key path tuple)."""
    return _compile(raw, where, 1)


def _compile(raw: Any, where: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise _bad(f"conditions are nested more than {MAX_DEPTH} levels deep", where, "condition.too_deep")
    if not isinstance(raw, dict):
        raise _bad(f"a condition is a mapping like {{path: $.x, equals: 1}} or {{all: [...]}}, got "
                   f"{type(raw).__name__}", where, "condition.invalid")
    combinators = [key for key in raw if key in COMBINATORS]
    if combinators:
        if len(raw) != 1:
            others = ", ".join(sorted(str(k) for k in raw if k != combinators[0]))
            raise _bad(f"'{combinators[0]}' must be alone in its mapping (also found: {others});"
                       " wrap them in all: [...]", where, "condition.invalid")
        key = combinators[0]
        value = raw[key]
        if key == "not":
            return Not(_compile(value, f"{where}.not", depth + 1))
        if not isinstance(value, list) or not value:
            raise _bad(f"'{key}' takes a non-empty list of conditions", f"{where}.{key}", "condition.invalid")
        children = tuple(_compile(item, f"{where}.{key}[{i}]", depth + 1) for i, item in enumerate(value))
        return All(children) if key == "all" else Any_(children)
    unknown = [key for key in raw if key != "path" and key not in OPERATORS]
    if unknown:
        raise _bad(f"unknown operator '{unknown[0]}'; operators are: {', '.join(OPERATORS)};"
                   f" combinators: all, any, not", f"{where}.{unknown[0]}", "condition.unknown_operator")
    if "path" not in raw:
        raise _bad("a condition needs 'path' (a JSONPath like $.payload.id)", where, "condition.missing_path")
    ops = [key for key in raw if key in OPERATORS]
    if len(ops) != 1:
        found = ", ".join(ops) if ops else "none"
        raise _bad(f"a condition has exactly one operator (found: {found}); combine several with all: [...]",
                   where, "condition.invalid")
    op = ops[0]
    try:
        path = compile_path(raw["path"], where=f"{where}.path")
    except StrategyError as exc:
        raise StrategyError(exc.message, code=exc.code, where=f"{where}.path",
                            details={"loc": _loc(f"{where}.path")}) from None
    test = _make_test(op, raw[op], f"{where}.{op}")
    return Leaf(path, op, raw[op], test, where)
