"""``${name}`` templates and strategy variables (docs/strategies.md). Data only: nothing is evaluated.

Template rules:

* ``${name}`` is replaced by the value of ``name`` (a variable or a builtin); ``name`` is
  ``[A-Za-z_][A-Za-z0-9_]*``. Anything else after ``${`` (``${a.b}``, ``${ x }``, ``${}``, an
  unclosed ``${``) is a load-time error ``template.invalid``.
* A string that is exactly one ``${name}`` keeps the value's type (a number stays a number, an
  object stays an object, ``null`` stays ``null``).
* Inside a longer string, values are written as text: strings as they are, numbers as JSON
  (``3``, ``2.5``), booleans ``true``/``false``, ``null`` as ``null``, lists and objects as
  compact JSON.
* ``$${`` writes a literal ``${`` (so ``"$${HOME}"`` renders ``${HOME}``). In general a run of
  ``n`` dollar signs followed by ``{`` writes ``n // 2`` dollar signs and, if ``n`` is odd, starts
  a placeholder: ``"$$${price}"`` renders ``$`` followed by the price. A ``$`` not followed by
  ``{`` is literal (``"$5"`` stays ``$5``).
* Lists and object values are rendered recursively; object keys are never templated; numbers,
  booleans and null are kept as they are.
* What a render builds is bounded: a strategy's variables together, and each node's input, take at
  most :data:`MAX_RENDERED_BYTES` of JSON. The size is computed from the template and the sizes of
  the values it names *before* anything is built, and a render that would build more is refused
  (``template.too_large``): ``b: "${a}${a}${a}${a}"``, ``c: "${b}${b}${b}${b}"``, ... would
  otherwise multiply one event value by 4 at every line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.paths import MISSING, CompiledPath, compile_path

BUILTINS = frozenset({"tenant", "event_id", "tenant_owner", "strategy_owner", "owner", "event_type",
                      "idempotency_key"})
"""``tenant_owner``: the tenant's owner (tenant registry); ``strategy_owner``: the strategy's ``owner``
key; ``owner``: kept as an alias of ``tenant_owner`` (lint warns: ``template.ambiguous_owner``)."""
"""Names every template may use besides the strategy's variables."""

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TEMPLATE_DEPTH = 32
MAX_RENDERED_BYTES = 256 * 1024
"""Most JSON bytes a strategy's rendered variables (all together) or one node's rendered input may
take: Step Functions' input limit, so anything larger could never be started anyway."""

_TOKEN = re.compile(r"(\$+)\{")


class _Name:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is MISSING:
        return "null"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _parse_string(text: str, where: str) -> Any:
    """A string → its literal value, a ``_Name`` (exact placeholder), or a tuple of parts."""
    if "${" not in text:
        return text
    parts: list[str | _Name] = []
    buf: list[str] = []
    pos = 0
    while True:
        match = _TOKEN.search(text, pos)
        if match is None:
            buf.append(text[pos:])
            break
        buf.append(text[pos:match.start()])
        dollars = len(match.group(1))
        buf.append("$" * (dollars // 2))
        if dollars % 2 == 0:  # "$${" → "${", "$$$${" → "$${": an escape, not a placeholder
            buf.append("{")
            pos = match.end()
            continue
        close = text.find("}", match.end())
        name = text[match.end():close] if close >= 0 else None
        if name is None or not NAME_RE.fullmatch(name):
            shown = text[match.end() - 2:(close + 1 if close >= 0 else len(text))][:60]
            raise StrategyError(f"'{shown}' is not a placeholder: write ${{name}} with a variable or builtin"
                                " name (letters, digits, _), or $${ for a literal ${",
                                code="template.invalid", where=where)
        pending = "".join(buf)
        if pending:
            parts.append(pending)
        buf = []
        parts.append(_Name(name))
        pos = close + 1
    tail = "".join(buf)
    if tail:
        parts.append(tail)
    if len(parts) == 1 and isinstance(parts[0], _Name):
        return parts[0]
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) == len(parts):
        return "".join(texts)  # only escapes
    return tuple(parts)


class Template:
    """A compiled template; :meth:`render` substitutes values, never evaluates anything."""

    __slots__ = ("names", "_tree", "source")

    def __init__(self, tree: Any, names: frozenset[str], source: Any) -> None:
        self._tree = tree
        self.names = names
        self.source = source

    @property
    def is_static(self) -> bool:
        return not self.names

    def size(self, values: Mapping[str, Any], limit: int = MAX_RENDERED_BYTES,
             sizes: dict[str, int] | None = None) -> int:
        """The JSON bytes :meth:`render` would build, computed without building it (a number above
        ``limit`` once it passes ``limit``). ``sizes`` caches the sizes of named values."""
        return _tree_size(self._tree, values, limit, {} if sizes is None else sizes)

    def render(self, values: Mapping[str, Any], limit: int = MAX_RENDERED_BYTES,
               sizes: dict[str, int] | None = None) -> Any:
        """The rendered value; ``template.too_large`` (nothing built) when it would take more than
        ``limit`` bytes of JSON."""
        size = self.size(values, limit, sizes)
        if size > limit:
            raise too_large(f"this template would render more than {limit:,} bytes of JSON", limit)
        return _render(self._tree, values)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


class _Seq(tuple):
    pass


class _Obj(tuple):
    pass


class _Parts(tuple):
    pass


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    try:
        return values[name]
    except KeyError:
        raise StrategyError(f"no value for '${{{name}}}' at render time", code="template.missing_value",
                            details={"name": name}) from None


def too_large(message: str, limit: int) -> StrategyError:
    return StrategyError(f"{message} (the limit, Step Functions' input size); pass references (ids, keys), "
                         "not documents, and do not repeat a large value", code="template.too_large",
                         details={"limit": limit})


def json_size(value: Any, limit: int) -> int:
    """The bytes of ``value`` as compact JSON (strings as UTF-8, escapes not counted), walked without
    recursion and only until the count passes ``limit`` (the result is then some number above it):
    the cost of the walk is bounded by ``limit``, even for a value that repeats one object many times."""
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item.encode("utf-8", "surrogatepass")) + 2
        elif isinstance(item, dict):
            size += 2 + len(item)
            for key, sub in item.items():
                size += len(str(key).encode("utf-8", "surrogatepass")) + 3
                stack.append(sub)
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            stack.extend(item)
        elif item is None or item is MISSING or isinstance(item, bool):
            size += 5
        else:
            size += len(str(item))
    return size


def _name_size(name: str, values: Mapping[str, Any], sizes: dict[str, int]) -> int:
    """A named value's size, walked once (up to the largest limit, so a cached size is never short)."""
    if name not in sizes:
        sizes[name] = json_size(_lookup(values, name), MAX_RENDERED_BYTES)
    return sizes[name]


def _tree_size(tree: Any, values: Mapping[str, Any], limit: int, sizes: dict[str, int]) -> int:
    """The size :func:`_render` would build (recursion bounded by ``MAX_TEMPLATE_DEPTH``)."""
    if isinstance(tree, _Name):
        return _name_size(tree.name, values, sizes)
    if isinstance(tree, _Parts):
        total = 2
        for part in tree:
            total += len(part.encode("utf-8", "surrogatepass")) if isinstance(part, str) else \
                _name_size(part.name, values, sizes)
            if total > limit:
                break
        return total
    if isinstance(tree, _Obj | _Seq):
        total = 2
        for item in tree:
            key, sub = item if isinstance(tree, _Obj) else ("", item)
            total += len(key.encode("utf-8", "surrogatepass")) + 4 + _tree_size(sub, values, limit - total, sizes)
            if total > limit:
                break
        return total
    return json_size(tree, limit)


def _render(tree: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(tree, _Name):
        value = _lookup(values, tree.name)
        return None if value is MISSING else value
    if isinstance(tree, _Parts):
        return "".join(part if isinstance(part, str) else _text(_lookup(values, part.name)) for part in tree)
    if isinstance(tree, _Obj):
        return {key: _render(sub, values) for key, sub in tree}
    if isinstance(tree, _Seq):
        return [_render(sub, values) for sub in tree]
    return tree


def _compile(value: Any, where: str, names: set[str], depth: int) -> Any:
    if depth > MAX_TEMPLATE_DEPTH:
        raise StrategyError(f"value nested more than {MAX_TEMPLATE_DEPTH} levels", code="template.too_deep",
                            where=where)
    if isinstance(value, str):
        parsed = _parse_string(value, where)
        if isinstance(parsed, _Name):
            names.add(parsed.name)
            return parsed
        if isinstance(parsed, tuple):
            names.update(part.name for part in parsed if isinstance(part, _Name))
            return _Parts(parsed)
        return parsed
    if isinstance(value, dict):
        return _Obj((key, _compile(sub, f"{where}.{key}", names, depth + 1)) for key, sub in value.items())
    if isinstance(value, list | tuple):
        return _Seq(_compile(sub, f"{where}[{i}]", names, depth + 1) for i, sub in enumerate(value))
    return value


def compile_template(value: Any, where: str, known: frozenset[str] | None = None) -> Template:
    """Compile ``value`` (string, list, mapping or scalar). With ``known``, a name outside it is a
    ``template.unknown_name`` error (``details["name"]``)."""
    names: set[str] = set()
    tree = _compile(value, where, names, 0)
    if known is not None:
        unknown = sorted(names - known)
        if unknown:
            raise StrategyError(
                f"unknown name '${{{unknown[0]}}}': define it under variables, or use a builtin"
                f" ({', '.join(sorted(BUILTINS))})", code="template.unknown_name", where=where,
                details={"name": unknown[0], "names": unknown})
    return Template(tree, frozenset(names), value)


# --- variables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PathVar:
    path: CompiledPath
    default: Any
    has_default: bool


class Variables:
    """The strategy's ``variables:``, compiled; :meth:`render` computes them for one event."""

    __slots__ = ("names", "_specs", "sources")

    def __init__(self, names: tuple[str, ...], specs: dict[str, Any], sources: dict[str, Any]) -> None:
        self.names = names  # evaluation order (dependencies first, otherwise as written)
        self._specs = specs
        self.sources = sources

    def dependencies(self, name: str) -> frozenset[str]:
        spec = self._specs[name]
        return spec.names if isinstance(spec, Template) else frozenset()

    def render(self, doc: dict, builtins: Mapping[str, Any]) -> dict[str, Any]:
        """Variables only (not the builtins), in :attr:`names` order. A path that matches nothing
        gives its ``default`` if one was written, else ``None``. ``template.too_large`` when the
        variables together would take more than :data:`MAX_RENDERED_BYTES` of JSON (checked before
        each one is built)."""
        scope: dict[str, Any] = dict(builtins)
        out: dict[str, Any] = {}
        sizes: dict[str, int] = {}
        spent = 0
        for name in self.names:
            spec = self._specs[name]
            room = MAX_RENDERED_BYTES - spent
            if isinstance(spec, _PathVar):
                value = spec.path.get(doc)
                if value is MISSING:
                    value = spec.default if spec.has_default else None
                size = json_size(value, room)
            else:
                size = spec.size(scope, room, sizes)
                value = spec.render(scope, room, sizes) if size <= room else None
            spent += size
            if spent > MAX_RENDERED_BYTES:
                raise too_large(f"the variables would take more than {MAX_RENDERED_BYTES:,} bytes of JSON "
                                f"('{name}' passes it)", MAX_RENDERED_BYTES)
            sizes[name] = size
            scope[name] = value
            out[name] = value
        return out

    def __repr__(self) -> str:
        return f"Variables({self.names!r})"


def _is_path(text: str) -> bool:
    return text == "$" or text.startswith("$.") or text.startswith("$[")


def compile_variables(raw: dict | None, builtins: frozenset[str] = BUILTINS,
                      where: str = "variables") -> Variables:
    """Compile ``variables:``. Each value is a JSONPath string (``$.x``), ``{path, default}``,
    ``{value: <literal or template>}``, a template string, or a plain scalar/list.

    Errors: ``template.invalid_variable`` (bad name or shape), ``template.shadows_builtin``,
    ``path.invalid``, ``template.invalid``, ``template.unknown_name``, ``template.cycle``; each
    with ``where="variables.<name>"`` and ``details["name"]``.
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise StrategyError("variables is a mapping of name: value", code="template.invalid_variable",
                            where=where)
    specs: dict[str, Any] = {}
    for name, value in raw.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise StrategyError(f"'{name}' is not a variable name (letters, digits, _; not starting with a digit)",
                                code="template.invalid_variable", where=at, details={"name": name})
        if name in builtins:
            raise StrategyError(f"variable '{name}' would hide the builtin of the same name",
                                code="template.shadows_builtin", where=at, details={"name": name})
        if isinstance(value, str) and _is_path(value):
            specs[name] = _PathVar(_path(value, at, name), None, False)
        elif isinstance(value, dict) and "path" in value:
            extra = sorted(set(value) - {"path", "default"})
            if extra:
                raise StrategyError(f"unknown key '{extra[0]}' in variable '{name}' (allowed: path, default)",
                                    code="template.invalid_variable", where=f"{at}.{extra[0]}",
                                    details={"name": name})
            specs[name] = _PathVar(_path(value["path"], f"{at}.path", name), value.get("default"),
                                   "default" in value)
        elif isinstance(value, dict) and set(value) == {"value"}:
            specs[name] = _template(value["value"], f"{at}.value", name)
        elif isinstance(value, dict):
            raise StrategyError(f"variable '{name}' is a mapping without 'path': write {{path: $.x, default: ...}}"
                                " or {value: ...}", code="template.invalid_variable", where=at,
                                details={"name": name})
        else:
            specs[name] = _template(value, at, name)
    known = frozenset(builtins) | frozenset(specs)
    for name, spec in specs.items():
        if isinstance(spec, Template):
            unknown = sorted(spec.names - known)
            if unknown:
                raise StrategyError(
                    f"variable '{name}' uses unknown name '${{{unknown[0]}}}' (variables: "
                    f"{', '.join(specs) or 'none'}; builtins: {', '.join(sorted(builtins))})",
                    code="template.unknown_name", where=f"{where}.{name}",
                    details={"name": name, "unknown": unknown[0]})
    order = _order(specs, where)
    return Variables(order, specs, dict(raw))


def _path(expr: Any, where: str, name: str) -> CompiledPath:
    try:
        return compile_path(expr, where=where)
    except StrategyError as exc:
        raise StrategyError(exc.message, code=exc.code, where=where, details={"name": name}) from None


def _template(value: Any, where: str, name: str) -> Template:
    try:
        return compile_template(value, where)
    except StrategyError as exc:
        raise StrategyError(exc.message, code=exc.code, where=exc.where or where,
                            details={**exc.details, "name": name}) from None


def _order(specs: dict[str, Any], where: str) -> tuple[str, ...]:
    """Dependencies first; otherwise definition order. A cycle is ``template.cycle``."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def deps(name: str) -> list[str]:
        spec = specs[name]
        if isinstance(spec, Template):
            return [d for d in specs if d in spec.names]
        return []

    for root in specs:
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, list[str]]] = [(root, deps(root))]
        trail = [root]
        state[root] = 1
        while stack:
            name, pending = stack[-1]
            if pending:
                nxt = pending.pop(0)
                if state.get(nxt) == 1:
                    cycle = trail[trail.index(nxt):] + [nxt]
                    raise StrategyError(f"variables refer to each other in a cycle: {' -> '.join(cycle)}",
                                        code="template.cycle", where=f"{where}.{nxt}",
                                        details={"name": nxt, "cycle": cycle})
                if state.get(nxt) != 2:
                    state[nxt] = 1
                    trail.append(nxt)
                    stack.append((nxt, deps(nxt)))
                continue
            stack.pop()
            trail.pop()
            state[name] = 2
            order.append(name)
    return tuple(order)
