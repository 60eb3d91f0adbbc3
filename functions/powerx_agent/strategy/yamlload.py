"""Safe YAML loading for strategy files (docs/strategies.md), keeping a position for every node.

What this loader accepts is deliberately smaller than YAML:

* YAML 1.2 core-schema scalars: only ``true``/``false`` (also ``True``/``TRUE``, ``False``/``FALSE``)
  are booleans, so ``on:``, ``yes``, ``no``, ``off`` stay strings; no timestamps, no sexagesimal
  numbers, no ``<<`` merge keys; ``0o17``/``0x1f`` are integers, ``.inf``/``.nan`` floats,
  ``~``/``null``/empty are null.
* anchors (``&a``) and aliases (``*a``) are refused (no alias bombs, no shared mutable nodes);
* only the standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!map``,
  ``!!seq``); anything else (``!!python/object``, ``!!binary``, ``!!set``, ...) is refused;
* mapping keys are strings and unique (``True:`` as a key, ``1:`` as a key and repeated keys are
  errors);
* one document per file, at most :data:`MAX_BYTES` of UTF-8 and :data:`MAX_DEPTH` levels of nesting.

Every problem is a :class:`~powerx_agent.errors.StrategyError` with a ``yaml.*`` code and
``where="source:line:col"`` (1-based).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from powerx_agent.errors import StrategyError

try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

MAX_BYTES = 256 * 1024
"""Largest strategy file accepted, in bytes of UTF-8."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted."""

MAX_SCALAR_CHARS = 64 * 1024
"""Longest single scalar accepted."""

KeyPath = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})


class _Core12Resolver(BaseResolver):
    """YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)."""

    yaml_implicit_resolvers: dict = {}


_Core12Resolver.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                      list("tTfF"))
_Core12Resolver.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Core12Resolver.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Core12Resolver.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))

_KIND = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null"}
_TRUE = frozenset({"true", "True", "TRUE"})


class _Checks:
    """Refuse aliases, anchors, huge scalars and deep nesting before the composer recurses."""

    _source: str
    _depth: int

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[attr-defined]
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            raise _error(self._source, mark, "yaml.alias",
                         f"alias '*{event.anchor}' refused: anchors and aliases are not allowed in strategies")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _error(self._source, mark, "yaml.anchor",
                         f"anchor '&{anchor}' refused: anchors and aliases are not allowed in strategies")
        if isinstance(event, ScalarEvent) and len(event.value) > MAX_SCALAR_CHARS:
            raise _error(self._source, mark, "yaml.too_large",
                         f"a scalar of {len(event.value)} characters exceeds the limit of {MAX_SCALAR_CHARS}")
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _error(self._source, mark, "yaml.too_deep",
                             f"nesting deeper than {MAX_DEPTH} levels")
            try:
                return Composer.compose_node(self, parent, index)  # type: ignore[arg-type]
            finally:
                self._depth -= 1
        return Composer.compose_node(self, parent, index)  # type: ignore[arg-type]


class _PyLoader(_Checks, Composer, Reader, Scanner, Parser, _Core12Resolver):
    """Pure-Python scanner and parser (fallback when PyYAML has no libyaml binding)."""

    def __init__(self, stream: str, source: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Core12Resolver.__init__(self)
        self._source = source
        self._depth = 0


if _CParser is not None:

    class _CLoader(_Checks, Composer, _CParser, _Core12Resolver):  # type: ignore[misc, valid-type]
        """libyaml scans and parses (fast, not recursive); the Python composer (first in the MRO,
        so libyaml's own composer is never used) builds the nodes with the checks above."""

        def __init__(self, stream: str, source: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            _Core12Resolver.__init__(self)
            self._source = source
            self._depth = 0

    _Loader: Any = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PyLoader


@dataclass(frozen=True)
class Loaded:
    """The plain data of one YAML document and where each part of it is in the file.

    ``positions`` maps a key path (``("flow", "nodes", 0, "id")``) to the 1-based ``(line, col)``
    of that mapping key (for mapping entries) or of that item (for sequence items); ``()`` is the
    document itself.
    """

    data: Any
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: tuple | list) -> tuple[int, int]:
        """Position of ``path`` or of its nearest ancestor that has one (``(1, 1)`` at worst)."""
        path = tuple(path)
        while path:
            found = self.positions.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.positions.get((), (1, 1))


def _error(source: str, mark: Any, code: str, message: str) -> StrategyError:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return StrategyError(message, code=code, where=f"{source}:{line}:{col}",
                         details={"source": source, "line": line, "col": col})


def _decode(text: str | bytes, source: str) -> str:
    if isinstance(text, str):
        raw_len = len(text.encode("utf-8", errors="surrogatepass"))
        if raw_len > MAX_BYTES:
            raise StrategyError(f"file is {raw_len} bytes, the limit is {MAX_BYTES}",
                                code="yaml.too_large", where=f"{source}:1:1",
                                details={"source": source, "line": 1, "col": 1})
        return text[1:] if text.startswith("\ufeff") else text
    if len(text) > MAX_BYTES:
        raise StrategyError(f"file is {len(text)} bytes, the limit is {MAX_BYTES}",
                            code="yaml.too_large", where=f"{source}:1:1",
                            details={"source": source, "line": 1, "col": 1})
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = text[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise StrategyError(f"not UTF-8: byte 0x{text[exc.start]:02x} at offset {exc.start} ({exc.reason})",
                            code="yaml.encoding", where=f"{source}:{line}:{col}",
                            details={"source": source, "line": line, "col": col}) from None
    return decoded[1:] if decoded.startswith("\ufeff") else decoded


def load_yaml(text: str | bytes, source: str) -> Loaded:
    """Parse one strategy document safely; see the module docstring for what is accepted."""
    stream = _decode(text, source)
    loader: Any = None
    try:
        loader = _Loader(stream, source)
        node = loader.get_single_node()
    except StrategyError:
        raise
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, exc, stream) from None
    except yaml.reader.ReaderError as exc:
        mark = _ReaderMark(stream, int(getattr(exc, "position", 0) or 0))
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise _error(source, mark, "yaml.invalid_char",
                     f"character U+{char:04X} is not allowed in YAML ({exc.reason})") from None
    except yaml.YAMLError as exc:  # any other PyYAML error carries no mark
        raise StrategyError(str(exc), code="yaml.syntax", where=f"{source}:1:1",
                            details={"source": source, "line": 1, "col": 1}) from None
    finally:
        if loader is not None:
            loader.dispose()
    positions: dict[tuple, tuple[int, int]] = {}
    if node is None:
        return Loaded(None, {(): (1, 1)})
    positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
    data = _construct(node, (), positions, source)
    return Loaded(data, positions)


class _ReaderMark:
    def __init__(self, stream: str, position: int) -> None:
        before = stream[:position]
        self.line = before.count("\n")
        self.column = len(before) - (before.rfind("\n") + 1)


def _char_at(stream: str, mark: Any) -> str:
    if mark is None:
        return ""
    lines = stream.split("\n")
    if 0 <= mark.line < len(lines) and 0 <= mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


def _yaml_error(source: str, exc: yaml.MarkedYAMLError, stream: str) -> StrategyError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    if "\\t" in problem or _char_at(stream, exc.problem_mark) == "\t":
        return _error(source, mark, "yaml.tab",
                      f"tab character where YAML expects spaces{context}: indent with spaces only")
    if "nesting depth" in problem:  # libyaml's own limit, met before ours in flow collections
        return _error(source, mark, "yaml.too_deep", f"nesting deeper than {MAX_DEPTH} levels")
    if "expected a single document" in (exc.context or "") or "single document" in problem:
        return _error(source, mark, "yaml.multiple_documents",
                      "a strategy file holds exactly one YAML document (remove the extra '---')")
    if _unquoted_path(stream, exc):
        return _error(source, mark, "yaml.syntax",
                      f"{problem}{context}: a JSONPath with [*] (or one starting with *) inside [ ] or {{ }} is read "
                      "as YAML syntax (an alias); quote it: path: \"$.items[*].id\"")
    return _error(source, mark, "yaml.syntax", f"{problem}{context}")


def _unquoted_path(stream: str, exc: yaml.MarkedYAMLError) -> bool:
    """The scanner met a JSONPath's ``[*]`` or a leading ``*`` (an alias to YAML) in a plain scalar."""
    if exc.context == "while scanning an alias":
        return True
    mark = exc.problem_mark
    lines = stream.split("\n")
    line = lines[mark.line] if mark is not None and 0 <= mark.line < len(lines) else ""
    return "[*]" in line and "flow" in (exc.context or "")


def _construct(node: Node, path: KeyPath, positions: dict[tuple, tuple[int, int]], source: str) -> Any:
    if isinstance(node, ScalarNode):
        return _scalar(node, source)
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ:
            raise _error(source, node.start_mark, "yaml.tag", f"tag '{node.tag}' is not allowed")
        items = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            positions[child_path] = (child.start_mark.line + 1, child.start_mark.column + 1)
            items.append(_construct(child, child_path, positions, source))
        return items
    if isinstance(node, MappingNode):
        if node.tag != _MAP:
            raise _error(source, node.start_mark, "yaml.tag", f"tag '{node.tag}' is not allowed")
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _error(source, key_node.start_mark, "yaml.non_string_key",
                             "a mapping key must be a plain string, not a mapping or a list")
            key = _scalar(key_node, source)
            if not isinstance(key, str):
                shown = key_node.value
                raise _error(source, key_node.start_mark, "yaml.non_string_key",
                             f"key '{shown}' is read as {_KIND.get(type(key), 'a non-string')}, keys must be strings"
                             f" (quote it: \"{shown}\")")
            if key in mapping:
                first = positions.get((*path, key), (0, 0))
                raise _error(source, key_node.start_mark, "yaml.duplicate_key",
                             f"key '{key}' appears twice in the same mapping (first at line {first[0]})")
            child_path = (*path, key)
            positions[child_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = _construct(value_node, child_path, positions, source)
        return mapping
    raise _error(source, node.start_mark, "yaml.syntax", "unexpected YAML node")  # pragma: no cover


def _scalar(node: ScalarNode, source: str) -> Any:
    tag, value = node.tag, node.value
    if tag not in _SCALAR_TAGS:
        raise _error(source, node.start_mark, "yaml.tag", f"tag '{tag}' is not allowed")
    if tag == _STR:
        return value
    if tag == _NULL:
        if value not in ("", "~", "null", "Null", "NULL"):
            raise _error(source, node.start_mark, "yaml.invalid_scalar", f"'{value}' is not null")
        return None
    if tag == _BOOL:
        if value in _TRUE:
            return True
        if value in ("false", "False", "FALSE"):
            return False
        raise _error(source, node.start_mark, "yaml.invalid_scalar",
                     f"'{value}' is not a boolean (YAML 1.2: only true or false)")
    if tag == _INT:
        try:
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        except ValueError:
            raise _error(source, node.start_mark, "yaml.invalid_scalar",
                         f"'{value[:40]}' is not an integer (or has too many digits)") from None
    # float
    try:
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return float(value)
    except ValueError:
        raise _error(source, node.start_mark, "yaml.invalid_scalar",
                     f"'{value[:40]}' is not a number") from None
