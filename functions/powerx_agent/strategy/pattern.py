"""Amazon EventBridge event patterns, matched in pure Python (docs/strategies.md, ``pattern:``).

A strategy may give ``pattern:`` instead of ``when:``: an EventBridge event pattern over the
whole EventBridge event (``source``, ``detail-type``, ``detail``, ...). The semantics are those of
AWS's matching engine, event-ruler (``Machine.rulesForJSONEvent``), checked against the
conformance corpus in ``tests/conformance/eventbridge``:

* The pattern and the event are both seen as *flattened* fields: the keys on the way to a leaf
  are joined with ``.``. ``{"detail": {"state.status": [...]}}`` and
  ``{"detail": {"state": {"status": [...]}}}`` therefore name the same field, in the pattern
  and in the event alike.
* A field of the pattern is a non-empty list of matchers; it is satisfied when one leaf value of
  the event field satisfies one matcher. Arrays in the event are transparent: every element is a
  leaf value of the same field. Objects and empty arrays are not leaves, so ``exists: true`` is
  false for them.
* Fields combine with AND, ``$or`` lists combine sub-patterns with OR (expanded at compile time
  into branches, like event-ruler's sub-rules).
* Array consistency: the leaves that satisfy the different fields of one branch must come from
  the same element of every array of objects they share (``{"a": {"b": [1], "c": [2]}}`` does
  not match ``{"a": [{"b": 1}, {"c": 2}]}``). ``exists: false`` means "no leaf consistent with
  the fields matched so far", fields being taken in sorted name order as event-ruler does.
* Matchers: exact values (strings; numbers by value, so ``300`` matches ``300.0``; ``true``,
  ``false``, ``null``; a string holding an IP address also matches other spellings of that
  address), ``prefix``, ``suffix`` (both also with ``{"equals-ignore-case": ...}``),
  ``equals-ignore-case``, ``wildcard`` (``*``, with the escapes ``\\*`` and ``\\\\``),
  ``anything-but`` (a value, a list of strings or of numbers, or ``{prefix|suffix|wildcard|
  equals-ignore-case: value or list}``; it matches every leaf that is not excluded, ``null``
  and other types included, but never a missing field), ``numeric`` (``=``, ``<``, ``<=``,
  ``>``, ``>=`` and two-sided ranges, on numbers within ±5e9), ``exists``, ``cidr`` (IPv4 and
  IPv6; host bits may be set, the network is their floor).

:func:`compile_pattern` validates the pattern and builds everything once (sets, globs, RE2
regexes, IP networks, numeric bounds, lookup plans); :meth:`CompiledPattern.matches` walks only the
parts of the event the pattern names and neither parses nor compiles anything.

Time bounds: nothing backtracks. ``wildcard`` is a greedy glob (a few ``str.find`` scans per
value, whatever the number of stars), non-ASCII ``equals-ignore-case`` runs on RE2 (linear),
every other test is a set lookup, a ``startswith``/``endswith`` or a comparison. The
array-consistency search is memoised and capped at :data:`MAX_CONSISTENCY_STEPS`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from powerx_agent.errors import StrategyError

__all__ = ["CompiledPattern", "compile_pattern", "MAX_BRANCHES", "MAX_CONSISTENCY_STEPS", "MAX_DEPTH", "MAX_FIELDS",
           "NUMERIC_LIMIT"]

#: Deepest nesting of objects (and ``$or``) a pattern may have.
MAX_DEPTH = 32
#: Most branches ``$or`` may expand into (the product of the nested ``$or`` sizes).
MAX_BRANCHES = 256
#: Most fields one branch may have (event-ruler's MAXIMUM_RULE_SIZE).
MAX_FIELDS = 256
#: EventBridge's numeric matching range, inclusive on both sides.
NUMERIC_LIMIT = 5e9
#: Most steps the array-consistency search may take for one event and one branch. Past it the
#: branch does not match and :meth:`CompiledPattern.explain` says ``too_complex`` (a bound for
#: patterns and events crafted together; no realistic pair comes near it, see docs/strategies.md).
MAX_CONSISTENCY_STEPS = 50_000

_ERROR_CODE = "pattern.invalid"
_OR = "$or"
_OPERATORS = ("prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case",
              "wildcard")
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_MISSING = "<missing>"
_ARRAY = (list, tuple)
_CONTAINER = (dict, list, tuple)

_Leaf = Any  # str | int | float | bool | None (Decimal accepted as a number)
_Test = Callable[[_Leaf], bool]
_Membership = tuple[tuple[int, int], ...]  # (id of an event array, index of the element)


# --------------------------------------------------------------------------------------------
# event side: lazy lookup of one flattened field
# --------------------------------------------------------------------------------------------

def _lookup_plan(name: str) -> dict[int, tuple[tuple[str, int], ...]]:
    """For each start offset in ``name``: the keys an event object may hold there.

    Every prefix of the remaining name that ends before a ``.`` (or at the end) can be one event
    key, so ``a.b.c`` can be reached through ``a`` → ``b`` → ``c``, ``a.b`` → ``c``, ``a`` →
    ``b.c`` or ``a.b.c``. The second item is the offset after the key and its dot, ``-1`` at
    the end of the name.
    """
    ends = [i for i, ch in enumerate(name) if ch == "."] + [len(name)]
    starts = [0] + [i + 1 for i, ch in enumerate(name) if ch == "."]
    plan: dict[int, tuple[tuple[str, int], ...]] = {}
    for start in starts:
        plan[start] = tuple((name[start:end], end + 1 if end < len(name) else -1)
                            for end in ends if end >= start)
    return plan


def _collect(node: dict, pos: int, plan: dict, mem: _Membership, out: list) -> None:
    for key, nxt in plan[pos]:
        if key in node:
            if nxt < 0:
                _leaves(node[key], mem, out)
            else:
                _descend(node[key], nxt, plan, mem, out)


def _descend(val: Any, pos: int, plan: dict, mem: _Membership, out: list) -> None:
    if isinstance(val, dict):
        _collect(val, pos, plan, mem, out)
    elif isinstance(val, _ARRAY):
        aid = id(val)
        for i, element in enumerate(val):
            if isinstance(element, _CONTAINER):
                _descend(element, pos, plan, mem + ((aid, i),), out)


def _leaves(val: Any, mem: _Membership, out: list) -> None:
    if isinstance(val, _ARRAY):
        aid = id(val)
        for i, element in enumerate(val):
            if isinstance(element, _ARRAY):
                _leaves(element, mem + ((aid, i),), out)
            elif not isinstance(element, dict):
                out.append((element, mem))
    elif not isinstance(val, dict):
        out.append((val, mem))


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float or (t is not bool and isinstance(v, int | float | Decimal))


def _consistent(mem: dict[int, int], m: _Membership) -> bool:
    for aid, idx in m:
        got = mem.get(aid, idx)
        if got != idx:
            return False
    return True


# --------------------------------------------------------------------------------------------
# value matchers (built once at compile time)
# --------------------------------------------------------------------------------------------

def _ci_regex(text: str) -> str:
    """event-ruler's equals-ignore-case: each pattern character matches its lower or upper case.

    Like event-ruler (which works on Java chars), characters outside the BMP match only
    themselves. The result is RE2 syntax: every character is written as ``\\x{hex}``, so no
    character of the pattern is ever read as regex syntax.
    """
    parts = []
    for ch in text:
        variants = {ch} if ord(ch) > 0xFFFF else {ch.lower(), ch.upper()}
        alts = sorted(variants, key=lambda s: (-len(s), s))
        spelled = ["".join(f"\\x{{{ord(c):x}}}" for c in alt) for alt in alts]
        parts.append(spelled[0] if len(spelled) == 1 else "(?:" + "|".join(spelled) + ")")
    return "".join(parts)


def _re2(body: str) -> Any:
    """An RE2 regex (linear time in the subject, whatever the pattern) over Unicode code points."""
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    options.dot_nl = True
    return re2.compile(body, options)


def _utf8_safe(v: str) -> str:
    """RE2 reads UTF-8: a lone surrogate (which no pattern character can equal) becomes U+FFFD."""
    try:
        v.encode("utf-8")
        return v
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in v)


def _ci_test(text: str, mode: str) -> _Test:
    """``mode`` is ``equals``, ``prefix`` or ``suffix``; the result tests strings only."""
    n = len(text)
    if text.isascii():
        low = text.lower()
        if mode == "equals":
            return lambda v: type(v) is str and len(v) == n and v.isascii() and v.lower() == low
        if mode == "prefix":
            def prefix(v: Any) -> bool:
                if type(v) is not str:
                    return False
                head = v[:n]
                return len(head) == n and head.isascii() and head.lower() == low
            return prefix

        def suffix(v: Any) -> bool:
            if type(v) is not str or len(v) < n:
                return False
            tail = v[len(v) - n:]
            return tail.isascii() and tail.lower() == low
        return suffix
    body = _ci_regex(text)
    if mode == "equals":
        rx = _re2(body).fullmatch
    elif mode == "prefix":
        rx = _re2(body).match
    else:
        rx = _re2("(?:" + body + r")\z").search
    return lambda v: type(v) is str and rx(_utf8_safe(v)) is not None


def _glob_test(segments: list[str]) -> _Test:
    """A ``*`` glob in linear time: the literal segments between stars, matched greedily.

    The first segment must start the value and the last must end it; each middle segment is
    taken at its leftmost place after the previous one. For globs whose only wildcard is ``*``
    the leftmost choice is always a best one, so no backtracking is ever needed: the work is a
    few ``str.find`` scans of the value, however many stars the pattern has.
    """
    first, *middle, last = segments
    least = sum(len(s) for s in segments)

    def test(v: Any) -> bool:
        if type(v) is not str or len(v) < least or not v.startswith(first) or not v.endswith(last):
            return False
        pos, end = len(first), len(v) - len(last)
        for seg in middle:
            found = v.find(seg, pos, end)
            if found < 0:
                return False
            pos = found + len(seg)
        return True
    return test


def _wildcard_test(text: str, where: str) -> _Test:
    segments: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                raise _invalid(f"wildcard '{text}' has consecutive '*' at position {i}; use a single '*'",
                               where)
            segments.append("".join(literal))
            literal = []
        elif ch == "\\":
            if i + 1 < len(text) and text[i + 1] in "*\\":
                literal.append(text[i + 1])
                i += 1
            else:
                raise _invalid(f"wildcard '{text}' has an invalid escape at position {i}: only '\\*' and "
                               f"'\\\\' are allowed", where)
        else:
            literal.append(ch)
        i += 1
    segments.append("".join(literal))
    if len(segments) == 1:
        exact = segments[0]
        return lambda v: type(v) is str and v == exact
    return _glob_test(segments)


def _parse_ip(v: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not v or len(v) > 45 or "%" in v:
        return None
    if ":" not in v and not v[0].isdigit():
        return None
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


def _cidr_test(text: Any, where: str) -> _Test:
    if type(text) is not str or text.count("/") != 1:
        raise _invalid(f"cidr must be a string like '10.0.0.0/24' or '2001:db8::/32', got {text!r}", where)
    addr, _, bits = text.partition("/")
    if not bits.isdigit() or _parse_ip(addr) is None:
        raise _invalid(f"cidr '{text}' is not an IPv4 or IPv6 network", where)
    try:
        net = ipaddress.ip_network(text, strict=False)  # host bits set: take the network floor
    except ValueError as exc:
        raise _invalid(f"cidr '{text}' is not valid: {exc}", where) from None
    version = net.version

    def test(v: Any) -> bool:
        if type(v) is not str:
            return False
        ip = _parse_ip(v)
        return ip is not None and ip.version == version and ip in net
    return test


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int too large for a float is finite but out of every range we use
        return True


def _check_number(value: Any, where: str, what: str) -> Any:
    if not _is_number(value):
        raise _invalid(f"{what} must be a number, got {value!r}", where)
    if not _finite(value) or not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
        raise _invalid(f"{what} {value!r} is outside EventBridge's numeric range -5e9..5e9", where)
    return value


def _numeric_test(spec: Any, where: str) -> _Test:
    if not isinstance(spec, list) or not spec:
        raise _invalid("numeric must be a list such as ['>', 0, '<=', 5] or ['=', 3]", where)
    lo: Any = None
    hi: Any = None
    lo_incl = hi_incl = False
    if len(spec) not in (2, 4) or any(not isinstance(spec[i], str) for i in range(0, len(spec), 2)):
        raise _invalid(f"numeric {spec!r} must be [op, number] or [op, number, op, number]", where)
    op = spec[0]
    if op not in _NUMERIC_OPS:
        raise _invalid(f"numeric operator {op!r} is not one of {', '.join(_NUMERIC_OPS)}", where)
    value = _check_number(spec[1], where, f"numeric '{op}' value")
    if len(spec) == 2:
        if op == "=":
            lo = hi = value
            lo_incl = hi_incl = True
        elif op in (">", ">="):
            lo, lo_incl = value, op == ">="
        else:
            hi, hi_incl = value, op == "<="
    else:
        top_op = spec[2]
        if op not in (">", ">=") or top_op not in ("<", "<="):
            raise _invalid(f"numeric range {spec!r} must be a lower bound ('>' or '>=') followed by an "
                           f"upper bound ('<' or '<=')", where)
        top = _check_number(spec[3], where, f"numeric '{top_op}' value")
        if not value < top:
            raise _invalid(f"numeric range {spec!r} is empty: the lower bound must be below the upper bound",
                           where)
        lo, lo_incl, hi, hi_incl = value, op == ">=", top, top_op == "<="

    low, high = -NUMERIC_LIMIT, NUMERIC_LIMIT

    def test(v: Any) -> bool:
        t = type(v)
        if not (t is int or t is float or (t is Decimal and v.is_finite())):
            return False
        if not low <= v <= high:
            return False
        if lo is not None and (v < lo or (v == lo and not lo_incl)):
            return False
        return not (hi is not None and (v > hi or (v == hi and not hi_incl)))
    return test


def _string_list(value: Any, where: str, what: str, allow_empty: bool = True) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise _invalid(f"{what} list must not be empty", where)
    for item in items:
        if type(item) is not str:
            raise _invalid(f"{what} must be a string or a list of strings, got {item!r}", where)
        if not allow_empty and item == "":
            raise _invalid(f"{what} must not be empty", where)
    return items


def _anything_but_test(spec: Any, where: str) -> _Test:
    """anything-but matches every leaf (null, numbers, booleans too) except the excluded ones."""
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise _invalid("anything-but takes one of prefix, suffix, wildcard or equals-ignore-case", where)
        ((op, arg),) = spec.items()
        if op == "prefix":
            prefixes = tuple(_string_list(arg, where, "anything-but prefix", allow_empty=False))
            return lambda v: type(v) is not str or not v.startswith(prefixes)
        if op == "suffix":
            suffixes = tuple(_string_list(arg, where, "anything-but suffix", allow_empty=False))
            return lambda v: type(v) is not str or not v.endswith(suffixes)
        if op == "wildcard":
            tests = [_wildcard_test(w, where) for w in _string_list(arg, where, "anything-but wildcard")]
        elif op == "equals-ignore-case":
            tests = [_ci_test(s, "equals") for s in _string_list(arg, where, "anything-but equals-ignore-case")]
        else:
            raise _invalid(f"anything-but does not support {op!r}: use a value, a list, or prefix, suffix, "
                           f"wildcard or equals-ignore-case", where)
        if len(tests) == 1:
            only = tests[0]
            return lambda v: type(v) is not str or not only(v)
        return lambda v: type(v) is not str or not any(t(v) for t in tests)

    values = spec if isinstance(spec, list) else [spec]
    if isinstance(spec, list) and not spec:
        raise _invalid("anything-but list must not be empty", where)
    strings = [v for v in values if type(v) is str]
    numbers = [v for v in values if _is_number(v) and not isinstance(v, bool)]
    if len(strings) + len(numbers) != len(values):
        raise _invalid("anything-but takes strings or numbers (not null, booleans, lists or objects)", where)
    if strings and numbers:
        raise _invalid("anything-but list mixes strings and numbers: use only one type", where)
    for n in numbers:
        _check_number(n, where, "anything-but number")
    excluded_strings = frozenset(strings)
    excluded_numbers = frozenset(numbers)
    if strings:
        return lambda v: type(v) is not str or v not in excluded_strings
    return lambda v: not _is_number(v) or v not in excluded_numbers


# --------------------------------------------------------------------------------------------
# compiled fields and branches
# --------------------------------------------------------------------------------------------

class _Field:
    """One flattened field of one branch: how to find it and how to test its leaves."""

    __slots__ = ("name", "plan", "test", "absent", "positive", "expected", "op")

    def __init__(self, name: str, plan: dict, test: _Test | None, absent: bool, expected: list,
                 op: str) -> None:
        self.name = name
        self.plan = plan
        self.test = test          # None: no value matcher (only exists:false)
        self.absent = absent      # exists:false is one of the alternatives
        self.positive = test is not None
        self.expected = expected  # the pattern fragment, for explain()
        self.op = op


def _op_name(matchers: list) -> str:
    for m in matchers:
        if isinstance(m, dict):
            return next(iter(m))
        return "equals"
    return "equals"


def _compile_operator(m: dict, here: str) -> _Test | bool:
    """An operator object → its test, or the bool of ``exists``."""
    if len(m) != 1:
        raise _invalid(f"a matcher object has exactly one operator, got {sorted(map(str, m))!r}", here)
    ((op, arg),) = m.items()
    if op == "exists":
        if type(arg) is not bool:
            raise _invalid(f"exists takes true or false, got {arg!r}", here)
        return arg
    if op in ("prefix", "suffix"):
        if isinstance(arg, dict):
            if len(arg) != 1 or type(arg.get("equals-ignore-case")) is not str:
                raise _invalid(f'{op} takes a string or {{"equals-ignore-case": string}}, got {arg!r}', here)
            return _ci_test(arg["equals-ignore-case"], op)
        if type(arg) is not str:
            raise _invalid(f'{op} takes a string or {{"equals-ignore-case": string}}, got {arg!r}', here)
        if op == "prefix":
            return lambda v: type(v) is str and v.startswith(arg)
        return lambda v: type(v) is str and v.endswith(arg)
    if op == "equals-ignore-case":
        if type(arg) is not str:
            raise _invalid(f"equals-ignore-case takes a string, got {arg!r}", here)
        return _ci_test(arg, "equals")
    if op == "wildcard":
        if type(arg) is not str:
            raise _invalid(f"wildcard takes a string, got {arg!r}", here)
        return _wildcard_test(arg, here)
    if op == "anything-but":
        return _anything_but_test(arg, here)
    if op == "numeric":
        return _numeric_test(arg, here)
    if op == "cidr":
        return _cidr_test(arg, here)
    raise _invalid(f"unknown operator {op!r}; expected one of {', '.join(_OPERATORS)}", here)


def _compile_field(name: str, matchers: list, where: str, plans: dict) -> _Field:
    strings: set[str] = set()
    numbers: set[Any] = set()
    ips: set[Any] = set()
    match_true = match_false = match_null = False
    any_leaf = False
    absent = False
    others: list[_Test] = []
    for i, m in enumerate(matchers):
        try:
            if m is None:
                match_null = True
            elif m is True:
                match_true = True
            elif m is False:
                match_false = True
            elif type(m) is str:
                strings.add(m)
                ip = _parse_ip(m)
                if ip is not None:
                    ips.add(ip)
            elif _is_number(m):
                if not _finite(m):
                    raise _invalid(f"{m!r} is not a JSON number", where)
                numbers.add(m)
            elif isinstance(m, dict):
                got = _compile_operator(m, where)
                if got is True:
                    any_leaf = True
                elif got is False:
                    absent = True
                else:
                    others.append(got)
            else:
                raise _invalid(f"a match value is a string, number, true, false, null or an operator object, "
                               f"got {m!r}", where)
        except StrategyError as exc:
            exc.details.setdefault("index", i)
            exc.details.setdefault("matcher", m)
            raise

    test = _combine(frozenset(strings), frozenset(numbers), frozenset(ips), match_true, match_false,
                    match_null, any_leaf, others)
    plan = plans.get(name)
    if plan is None:
        plan = plans[name] = _lookup_plan(name)
    return _Field(name, plan, test, absent, matchers, _op_name(matchers))


def _combine(strings: frozenset, numbers: frozenset, ips: frozenset, match_true: bool, match_false: bool,
             match_null: bool, any_leaf: bool, others: list[_Test]) -> _Test | None:
    if any_leaf:
        return lambda v: True
    has_exact = bool(strings or numbers or match_true or match_false or match_null)
    if not has_exact and not others:
        return None
    if not has_exact and len(others) == 1:
        return others[0]
    if not others and not ips and not numbers and not (match_true or match_false or match_null):
        return lambda v: type(v) is str and v in strings
    others_t = tuple(others)

    def test(v: Any) -> bool:
        t = type(v)
        if t is str:
            if v in strings:
                return True
            if ips:
                ip = _parse_ip(v)
                if ip is not None and ip in ips:
                    return True
        elif v is None:
            if match_null:
                return True
        elif t is bool:
            if (match_true and v) or (match_false and not v):
                return True
        elif numbers and _is_number(v) and v in numbers:
            return True
        for o in others_t:
            if o(v):
                return True
        return False
    return test


class _Branch:
    """One AND-combination of fields (a sub-rule); fields are kept in sorted name order."""

    __slots__ = ("fields", "display")

    def __init__(self, fields: list[_Field], display: list[_Field]) -> None:
        self.fields = tuple(fields)
        self.display = tuple(display)


# --------------------------------------------------------------------------------------------
# the compiled pattern
# --------------------------------------------------------------------------------------------

class CompiledPattern:
    """A validated EventBridge event pattern, ready to match events (thread-safe, immutable)."""

    __slots__ = ("source", "where", "_branches", "_single")

    def __init__(self, source: dict, where: str, branches: list[_Branch]) -> None:
        self.source = source
        self.where = where
        self._branches = tuple(branches)
        self._single = branches[0] if len(branches) == 1 else None

    def __repr__(self) -> str:
        return f"CompiledPattern({self.source!r})"

    # ---- matching -------------------------------------------------------------------------

    def matches(self, event: dict) -> bool:
        """True when the EventBridge ``event`` matches the pattern."""
        if not isinstance(event, dict):
            return False
        single = self._single
        if single is not None:
            return _match_branch(single, event, None)
        cache: dict[str, list] = {}
        return any(_match_branch(b, event, cache) for b in self._branches)

    def explain(self, event: dict) -> dict | None:
        """``None`` when ``event`` matches; otherwise the first failing field of the closest branch.

        The result is ``{"path", "op", "expected", "actual"}``: the flattened field name, the
        operator of its first matcher (``equals`` for plain values), the pattern fragment, and the
        event's value there (one leaf, a list of leaves, or ``"<missing>"``).
        """
        if self.matches(event):
            return None
        if not isinstance(event, dict):
            return {"path": "", "op": "equals", "expected": "an object", "actual": event}
        best: tuple[int, dict] | None = None
        cache: dict[str, list] = {}
        for branch in self._branches:
            progress, report = _explain_branch(branch, event, cache)
            if best is None or progress > best[0]:
                best = (progress, report)
        assert best is not None
        return best[1]


def _values(field: _Field, event: dict, cache: dict | None) -> list:
    if cache is not None:
        got = cache.get(field.name)
        if got is not None:
            return got
    out: list = []
    _collect(event, 0, field.plan, (), out)
    if cache is not None:
        cache[field.name] = out
    return out


def _match_branch(branch: _Branch, event: dict, cache: dict | None) -> bool:
    fields = branch.fields
    collected: list[list] = []
    simple = True  # every field is satisfied by an array-free leaf, or absent with no leaf at all
    for f in fields:
        vals = _values(f, event, cache)
        collected.append(vals)
        if not vals:
            if f.absent:
                continue
            return False
        test = f.test
        if test is None:  # only exists:false
            for _, m in vals:
                if not m:  # a leaf outside any array of objects is consistent with everything
                    return False
            simple = False
            continue
        found = False
        in_array = False
        for v, m in vals:
            if test(v):
                if not m:
                    found = True
                    break
                in_array = True
        if found:
            continue
        if not in_array and not f.absent:
            return False
        simple = False
    if simple:
        return True
    per_field = []
    for f, vals in zip(fields, collected, strict=True):
        test = f.test
        good = {m for v, m in vals if test is not None and test(v)}
        per_field.append((good, {m for _, m in vals}))
    try:
        return _search(fields, per_field) >= len(fields)
    except _TooComplex:
        return False


class _TooComplex(Exception):
    """The array-consistency search spent :data:`MAX_CONSISTENCY_STEPS` without an answer."""


def _search(fields: tuple, per_field: list) -> int:
    """How many fields (in sorted order) an array-consistent choice of leaves satisfies.

    A depth-first search over the fields, memoised: what is left to decide from field ``i`` on
    depends only on the array elements already chosen *for arrays that fields i.. still use*, so
    the state is ``(i, that projection)``. Fields are sorted by name, hence grouped by the arrays
    they share, which keeps the projections few: the search is polynomial in the leaves (without
    the memo, 8 fields of 6 elements each took 1.7 million steps). A hard step budget
    (:data:`MAX_CONSISTENCY_STEPS`) bounds even a pattern and event crafted against the memo.
    """
    n = len(fields)
    future: list[frozenset] = [frozenset()] * (n + 1)
    arrays: set[int] = set()
    for i in range(n - 1, -1, -1):
        for m in per_field[i][1]:
            arrays.update(aid for aid, _ in m)
        future[i] = frozenset(arrays)
    memo: dict[tuple[int, frozenset], int] = {}
    steps = [0]

    def step(i: int, mem: dict[int, int]) -> int:
        if i == n:
            return n
        key = (i, frozenset(mem.items()))
        got = memo.get(key)
        if got is not None:
            return got
        good, allm = per_field[i]
        steps[0] += len(good) + len(allm) + 1
        if steps[0] > MAX_CONSISTENCY_STEPS:
            raise _TooComplex
        keep = future[i + 1]
        best = i
        for m in good:
            if not _consistent(mem, m):
                continue
            merged = {aid: idx for aid, idx in mem.items() if aid in keep}
            merged.update((aid, idx) for aid, idx in m if aid in keep)
            got = step(i + 1, merged)
            if got == n:
                break
            best = max(best, got)
        else:
            got = best
            if fields[i].absent and not any(_consistent(mem, m) for m in allm):
                got = max(best, step(i + 1, {aid: idx for aid, idx in mem.items() if aid in keep}))
        memo[key] = got
        return got

    return step(0, {})


def _actual(vals: list) -> Any:
    if not vals:
        return _MISSING
    if len(vals) == 1:
        return vals[0][0]
    return [v for v, _ in vals]


def _explain_branch(branch: _Branch, event: dict, cache: dict) -> tuple[int, dict]:
    satisfied = 0
    for f in branch.display:
        vals = _values(f, event, cache)
        ok = (f.absent and not vals) or (f.test is not None and any(f.test(v) for v, _ in vals))
        if not ok:
            return satisfied, {"path": f.name, "op": f.op, "expected": f.expected, "actual": _actual(vals)}
        satisfied += 1
    # every field is satisfied on its own: the leaves come from different array elements
    per_field = []
    for f in branch.fields:
        vals = _values(f, event, cache)
        good = {m for v, m in vals if f.test is not None and f.test(v)}
        per_field.append((good, {m for _, m in vals}))
    try:
        reached = _search(branch.fields, per_field)
    except _TooComplex:
        return 0, {"path": branch.fields[0].name, "op": "too_complex", "expected": MAX_CONSISTENCY_STEPS,
                   "actual": "the array-consistency search exceeded its step budget"}
    f = branch.fields[min(reached, len(branch.fields) - 1)]
    return reached, {"path": f.name, "op": f.op, "expected": f.expected,
                     "actual": _actual(_values(f, event, cache))}


# --------------------------------------------------------------------------------------------
# compilation
# --------------------------------------------------------------------------------------------

def _invalid(message: str, where: str, details: dict[str, Any] | None = None) -> StrategyError:
    return StrategyError(message, code=_ERROR_CODE, where=where, details=details)


def _key_where(where: str, key: str) -> str:
    return f"{where}.{key}"


def _expand(obj: Any, prefix: str, where: str, depth: int, in_or: bool) -> list[list[tuple[str, list, str]]]:
    """Flatten ``obj`` into branches: lists of (field name, matcher list, where)."""
    if depth > MAX_DEPTH:
        raise _invalid(f"the pattern is nested more than {MAX_DEPTH} levels deep", where)
    if not isinstance(obj, dict):
        raise _invalid(f"expected an object, got {type(obj).__name__}", where)
    if not obj:
        raise _invalid("empty objects are not allowed in a pattern", where)
    branches: list[list[tuple[str, list, str]]] = [[]]
    for key, value in obj.items():
        if not isinstance(key, str):
            raise _invalid(f"keys must be strings, got {key!r}", where)
        here = _key_where(where, key)
        if key == _OR:
            if not isinstance(value, list) or len(value) < 2:
                raise _invalid("$or takes a list of at least two objects", here)
            alternatives: list[list[tuple[str, list, str]]] = []
            for i, sub in enumerate(value):
                sub_where = f"{here}[{i}]"
                if not isinstance(sub, dict):
                    raise _invalid(f"$or takes objects only, got {type(sub).__name__}", sub_where)
                alternatives.extend(_expand(sub, prefix, sub_where, depth + 1, True))
            branches = [b + alt for b in branches for alt in alternatives]
        else:
            if in_or and key in _OPERATORS:
                raise _invalid(f"'{key}' is a reserved operator name and cannot be a field inside $or", here)
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                subs = _expand(value, name, here, depth + 1, in_or)
                branches = [b + s for b in branches for s in subs]
            elif isinstance(value, list):
                if not value:
                    raise _invalid("empty lists are not allowed: give at least one value or operator", here)
                for b in branches:
                    b.append((name, value, here))
            else:
                raise _invalid(f"'{key}' must be an object or a list of values/operators, got {value!r} "
                               f"(write [{_json_like(value)}])", here)
        if len(branches) > MAX_BRANCHES:
            raise _invalid(f"$or expands into more than {MAX_BRANCHES} combinations", here)
    return branches


def _json_like(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_pattern(pattern: dict, where: str = "pattern") -> CompiledPattern:
    """Validate an EventBridge event pattern and compile it once.

    Raises :class:`~powerx_agent.errors.StrategyError` with code ``pattern.invalid`` and ``where``
    pointing at the offending place (``pattern.detail.x``) when the pattern is not valid.
    """
    if not isinstance(pattern, dict):
        raise _invalid(f"an event pattern is an object, got {type(pattern).__name__}", where)
    raw_branches = _expand(pattern, "", where, 1, False)
    plans: dict[str, dict] = {}
    compiled: dict[tuple[str, int], _Field] = {}
    branches: list[_Branch] = []
    for raw in raw_branches:
        if len(raw) > MAX_FIELDS:
            raise _invalid(f"the pattern has more than {MAX_FIELDS} fields in one combination", where)
        seen: dict[str, str] = {}
        display: list[_Field] = []
        for name, matchers, here in raw:
            if name in seen:
                raise _invalid(f"field '{name}' is given twice (also at {seen[name]}); dotted keys and nested "
                               f"objects name the same field", here)
            seen[name] = here
            key = (name, id(matchers))
            field = compiled.get(key)
            if field is None:
                field = compiled[key] = _compile_field(name, matchers, here, plans)
            display.append(field)
        branches.append(_Branch(sorted(display, key=lambda f: f.name), display))
    return CompiledPattern(pattern, where, branches)
