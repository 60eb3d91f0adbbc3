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
import yaml.composer
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
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

_PLAIN: dict[tuple[str, Any], Any] = {}
_PLAIN_MAX = 16_384  # at most a few MB, whatever the files hold
_PLAIN_MAX_CHARS = 64
_MISSING = object()


def _plain_scalar(loader: Any, text: str, implicit: Any, mark: Any, source: str,
                  deferred: list[StrategyError]) -> Any:
    """The value of an untagged scalar (tag resolved, then checked and converted), remembered for short
    texts: the same keys and small values recur in every file of a library, and a lint of 10,000
    files reads about a million of them. A refused value is not remembered (its error names the place)."""
    value = _PLAIN.get((text, implicit), _MISSING)
    if value is not _MISSING:
        return value
    value = _checked_scalar(str(loader.resolve(ScalarNode, text, implicit)), text, mark, source, deferred)
    if not deferred and len(text) <= _PLAIN_MAX_CHARS:
        if len(_PLAIN) >= _PLAIN_MAX:
            _PLAIN.clear()
        _PLAIN[(text, implicit)] = value
    return value


def _checked_scalar(tag: str, text: str, mark: Any, source: str, deferred: list[StrategyError]) -> Any:
    try:
        return _scalar(tag, text, mark, source)
    except StrategyError as exc:
        deferred.append(exc)
        return None


_KIND = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null"}
_TRUE = frozenset({"true", "True", "TRUE"})


class _PyLoader(Reader, Scanner, Parser, _Core12Resolver):
    """Pure-Python scanner and parser (fallback when PyYAML has no libyaml binding)."""

    def __init__(self, stream: str, source: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Core12Resolver.__init__(self)


if _CParser is not None:

    class _CLoader(_CParser, _Core12Resolver):  # type: ignore[misc, valid-type]
        """libyaml scans and parses (fast, not recursive); :func:`_build` makes the data from its
        events (libyaml's own composer, which recurses, is never used)."""

        def __init__(self, stream: str, source: str) -> None:
            _CParser.__init__(self, stream)
            _Core12Resolver.__init__(self)

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
        data, positions = _build(loader, source)
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


class _Frame:
    """An open mapping or sequence while its events are read."""

    __slots__ = ("key", "path", "value")

    def __init__(self, value: Any, path: KeyPath) -> None:
        self.value = value
        self.path = path
        self.key: Any = _NO_KEY  # a mapping waiting for its next key


_NO_KEY = object()


def _build(loader: Any, source: str) -> tuple[Any, dict[tuple, tuple[int, int]]]:
    """The data of the one document of ``loader``'s event stream and the position of every part,
    in one pass without recursion. Checked as events arrive: anchors, aliases, scalar size and
    nesting depth; then tags, keys and values. The first problem of the second kind is raised
    only once the document was read without one of the first (nor a second document), so a file
    is refused for the same reason whichever problem comes first in it."""
    positions: dict[tuple, tuple[int, int]] = {}
    deferred: list[StrategyError] = []
    loader.get_event()  # stream start
    if loader.check_event(StreamEndEvent):
        return None, {(): (1, 1)}
    document = loader.get_event()  # document start
    root: Any = None
    stack: list[_Frame] = []
    while True:
        event = loader.get_event()
        kind = type(event)  # the parser's own event classes: compared by identity (the hot path of a lint)
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            stack.pop()
            if not stack:
                break
            continue
        mark = event.start_mark
        if kind is AliasEvent:
            raise _error(source, mark, "yaml.alias",
                         f"alias '*{event.anchor}' refused: anchors and aliases are not allowed in strategies")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _error(source, mark, "yaml.anchor",
                         f"anchor '&{anchor}' refused: anchors and aliases are not allowed in strategies")
        parent = stack[-1] if stack else None
        if kind is ScalarEvent:
            text = event.value
            if len(text) > MAX_SCALAR_CHARS:
                raise _error(source, mark, "yaml.too_large",
                             f"a scalar of {len(text)} characters exceeds the limit of {MAX_SCALAR_CHARS}")
            value: Any = _plain_scalar(loader, text, event.implicit, mark, source, deferred) \
                if event.tag is None or event.tag == "!" else _checked_scalar(event.tag, text, mark, source, deferred)
            if parent is not None and type(parent.value) is dict:
                if parent.key is _NO_KEY:  # the value is a key
                    if not deferred:
                        if type(value) is str and value not in parent.value:
                            positions[(*parent.path, value)] = (mark.line + 1, mark.column + 1)
                        else:
                            _key(parent, value, text, mark, source, positions, deferred)
                    parent.key = value
                    continue
                if type(parent.key) is str:  # a scalar value: no position of its own (its key has one)
                    parent.value[parent.key] = value
                parent.key = _NO_KEY
                continue
            frame = None
        else:  # a mapping or a sequence starts
            if len(stack) + 1 > MAX_DEPTH:
                raise _error(source, mark, "yaml.too_deep", f"nesting deeper than {MAX_DEPTH} levels")
            is_map = kind is MappingStartEvent
            expected = _MAP if is_map else _SEQ
            tag = event.tag if event.tag not in (None, "!") else loader.resolve(
                MappingNode if is_map else SequenceNode, None, event.implicit)
            if tag != expected:
                deferred.append(_error(source, mark, "yaml.tag", f"tag '{tag}' is not allowed"))
            value = {} if is_map else []
            frame = _Frame(value, ())
            if parent is not None and isinstance(parent.value, dict) and parent.key is _NO_KEY:
                deferred.append(_error(source, mark, "yaml.non_string_key",
                                       "a mapping key must be a plain string, not a mapping or a list"))
                parent.key = frame  # read and dropped: the error is raised
                stack.append(frame)
                continue
        path: KeyPath
        if parent is None:
            root, path = value, ()
            positions[()] = (mark.line + 1, mark.column + 1)
        elif isinstance(parent.value, list):
            path = (*parent.path, len(parent.value))
            positions[path] = (mark.line + 1, mark.column + 1)
            parent.value.append(value)
        else:
            path = (*parent.path, parent.key) if not isinstance(parent.key, _Frame) else parent.path
            if isinstance(parent.key, str):
                parent.value[parent.key] = value
            parent.key = _NO_KEY
        if frame is None:
            if parent is None:
                break
            continue
        frame.path = path
        stack.append(frame)
    loader.get_event()  # document end
    if not loader.check_event(StreamEndEvent):
        raise yaml.composer.ComposerError("expected a single document in the stream", document.start_mark,
                                          "but found another document", loader.get_event().start_mark)
    if deferred:
        raise deferred[0]
    return root, positions


def _key(frame: _Frame, key: Any, text: str, mark: Any, source: str, positions: dict[tuple, tuple[int, int]],
         deferred: list[StrategyError]) -> None:
    """Check the key just read for ``frame`` (a mapping) and record its position."""
    if not isinstance(key, str):
        deferred.append(_error(source, mark, "yaml.non_string_key",
                               f"key '{text}' is read as {_KIND.get(type(key), 'a non-string')}, keys must be strings"
                               f" (quote it: \"{text}\")"))
        return
    if key in frame.value:
        first = positions.get((*frame.path, key), (0, 0))
        deferred.append(_error(source, mark, "yaml.duplicate_key",
                               f"key '{key}' appears twice in the same mapping (first at line {first[0]})"))
        return
    positions[(*frame.path, key)] = (mark.line + 1, mark.column + 1)


def _scalar(tag: str, value: str, mark: Any, source: str) -> Any:
    if tag not in _SCALAR_TAGS:
        raise _error(source, mark, "yaml.tag", f"tag '{tag}' is not allowed")
    if tag == _STR:
        return value
    if tag == _NULL:
        if value not in ("", "~", "null", "Null", "NULL"):
            raise _error(source, mark, "yaml.invalid_scalar", f"'{value}' is not null")
        return None
    if tag == _BOOL:
        if value in _TRUE:
            return True
        if value in ("false", "False", "FALSE"):
            return False
        raise _error(source, mark, "yaml.invalid_scalar",
                     f"'{value}' is not a boolean (YAML 1.2: only true or false)")
    if tag == _INT:
        try:
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        except ValueError:
            raise _error(source, mark, "yaml.invalid_scalar",
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
        raise _error(source, mark, "yaml.invalid_scalar",
                     f"'{value[:40]}' is not a number") from None
