"""Compiled library artifacts: what a cold matcher reads instead of parsing every strategy's YAML.

One artifact per library revision, written when the revision is published (``strategy approve``,
``rollback``, ``library rebuild``). It holds, for every active strategy version, its checked model
(the validated strategy as JSON), what the index needs to place it (id, version, weight, status,
tenants, event types, and the selection order of every event type) and its flow compiled once with
placeholder function ARNs (:class:`~powerx_agent.taskflow.asl.FlowTemplate`), plus the SHA-256 of
its inputs (each version's YAML digest).

Layout (all JSON, no pickle: nothing in an artifact is ever executed)::

    b"PXLIB\\0" | u32 length of the table of contents | table of contents (JSON) | segments

The table of contents gives the format, the revision, the number of strategies, the inputs digest
and where each zlib-compressed segment lies: one *index* segment (the columns above) and *blocks*
of up to :data:`BLOCK_RECORDS` strategies each (their ``when``/``pattern``, model and flow).

Reading is bounded and checked in order: the SHA-256 of the whole payload against the digest the
revision item holds (a changed byte anywhere is refused), the magic, the format, the revision, every
segment within the payload and decompressed to at most :data:`MAX_SEGMENT_BYTES`, every column of
the same length. Then nothing is compiled: a member's ``when``/``pattern`` is compiled when its
event type is first looked up, and its model is validated again by the strict pydantic models (and
its variables and templates compiled) when it is first selected. A member that fails then raises
:class:`ArtifactError`, which the matcher treats as a corrupt artifact.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from powerx_agent.errors import StrategyError, TaskflowError
from powerx_agent.strategy.conditions import Condition, compile_condition
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.strategy.loader import CompiledStrategy, compile_checked
from powerx_agent.strategy.pattern import compile_pattern
from powerx_agent.taskflow.asl import FlowTemplate, flow_template

ARTIFACT_FORMAT = 1
"""Bumped whenever the layout or the meaning of a stored field changes: a matcher refuses (and
falls back from) an artifact of another format."""
MAGIC = b"PXLIB\x00"
MAX_TOC_BYTES = 1024 * 1024
MAX_SEGMENT_BYTES = 256 * 1024 * 1024
"""Largest decompressed segment accepted (bounded memory whatever the stored bytes say)."""
BLOCK_RECORDS = 128
COMPRESSION_LEVEL = 6
_COLUMNS = ("ids", "versions", "weights", "statuses", "tenants", "events", "sources", "yaml_sha256", "loc")


class ArtifactError(StrategyError):
    """An artifact that cannot be served (missing, corrupt, stale, another format, ...)."""


def _dumps(value: Any, sort_keys: bool = True) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys).encode("utf-8")


@dataclass(frozen=True)
class Record:
    """One strategy version as an artifact stores it."""

    id: str
    version: int
    weight: int
    status: str
    tenants: tuple[str, ...]
    events: tuple[str, ...]
    source: str
    yaml_sha256: str
    match: bytes  # {"when": ...} | {"pattern": ...} | {}
    model: bytes  # the validated strategy (Strategy.model_dump(mode="json"))
    flow: bytes  # FlowTemplate.to_dict(), or null when the flow is compiled by the matcher

    @property
    def key(self) -> tuple[str, int]:
        return self.id, self.version


def record_of(compiled: CompiledStrategy, yaml_sha256: str) -> Record:
    """The record of a strategy that loaded without errors (its flow compiled once, here)."""
    strategy = compiled.strategy
    model = _dumps(strategy.model_dump(mode="json"), sort_keys=False)  # key order is the author's
    match = {"when": strategy.when} if strategy.when is not None else (
        {"pattern": strategy.pattern} if strategy.pattern is not None else {})
    template = flow_template(strategy, model.decode("utf-8"))
    return Record(strategy.id, strategy.version, strategy.weight, strategy.status, tuple(strategy.tenants),
                  tuple(strategy.on.event), compiled.source, yaml_sha256, _dumps(match, sort_keys=False), model,
                  _dumps(template.to_dict() if template is not None else None))


def inputs_sha256(inputs: Sequence[tuple[str, int, str]]) -> str:
    """The digest of what a revision is built from: every (id, version, YAML SHA-256), sorted."""
    return hashlib.sha256(_dumps({"format": ARTIFACT_FORMAT, "inputs": sorted(inputs)})).hexdigest()


@dataclass(frozen=True)
class Built:
    payload: bytes
    revision: int
    strategies: int
    inputs_sha256: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def encode(records: Sequence[Record], revision: int) -> Built:
    """The artifact of ``records`` (one per strategy id) for library revision ``revision``."""
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ArtifactError("an artifact holds one version per strategy", code="artifact.duplicate_id")
    # blocks keep the strategies of an event type together: a cold matcher decompresses few of them
    ordered = sorted(records, key=lambda r: (min(r.events), -r.weight, r.id))
    blocks: list[bytes] = []
    loc: list[list[int]] = []
    for start in range(0, len(ordered), BLOCK_RECORDS):
        raw = bytearray()
        for record in ordered[start:start + BLOCK_RECORDS]:
            loc.append([len(blocks), len(raw), len(record.match), len(record.model), len(record.flow)])
            raw += record.match + record.model + record.flow
        blocks.append(zlib.compress(bytes(raw), COMPRESSION_LEVEL))
    order: dict[str, list[int]] = defaultdict(list)
    for pos, record in enumerate(ordered):
        for event_type in record.events:
            order[event_type].append(pos)
    for positions in order.values():  # selection order: highest weight first, then lowest id
        positions.sort(key=lambda p: (-ordered[p].weight, ordered[p].id))
    digest = inputs_sha256([(r.id, r.version, r.yaml_sha256) for r in ordered])
    index = zlib.compress(_dumps({
        "ids": [r.id for r in ordered], "versions": [r.version for r in ordered],
        "weights": [r.weight for r in ordered], "statuses": [r.status for r in ordered],
        "tenants": [list(r.tenants) for r in ordered], "events": [list(r.events) for r in ordered],
        "sources": [r.source for r in ordered], "yaml_sha256": [r.yaml_sha256 for r in ordered],
        "loc": loc, "order": order}), COMPRESSION_LEVEL)
    segments = [index, *blocks]
    offsets, at = [], 0
    for segment in segments:
        offsets.append([at, len(segment)])
        at += len(segment)
    toc = _dumps({"format": ARTIFACT_FORMAT, "revision": revision, "strategies": len(ordered),
                  "inputs_sha256": digest, "index": offsets[0], "blocks": offsets[1:]})
    payload = MAGIC + len(toc).to_bytes(4, "big") + toc + b"".join(segments)
    return Built(payload, revision, len(ordered), digest)


def _inflate(data: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_SEGMENT_BYTES)
    except zlib.error as exc:
        raise ArtifactError(f"{what} does not decompress: {exc}", code="artifact.corrupt") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise ArtifactError(f"{what} is truncated or larger than {MAX_SEGMENT_BYTES} bytes",
                            code="artifact.corrupt")
    return out


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ArtifactError(f"artifact index: {message}", code="artifact.corrupt")


class Artifact:
    """A verified artifact: its table of contents and index read; blocks decompressed on demand."""

    def __init__(self, payload: bytes, *, sha256: str | None, revision: int | None) -> None:
        if sha256 is not None and hashlib.sha256(payload).hexdigest() != sha256:
            raise ArtifactError("the artifact's SHA-256 differs from the revision's: refusing it",
                                code="artifact.corrupt")
        if payload[:len(MAGIC)] != MAGIC or len(payload) < len(MAGIC) + 4:
            raise ArtifactError("not a library artifact", code="artifact.corrupt")
        start = len(MAGIC) + 4
        size = int.from_bytes(payload[len(MAGIC):start], "big")
        if size > MAX_TOC_BYTES or start + size > len(payload):
            raise ArtifactError("the artifact's table of contents is out of bounds", code="artifact.corrupt")
        try:
            toc = json.loads(payload[start:start + size])
        except ValueError:
            raise ArtifactError("the artifact's table of contents is not JSON", code="artifact.corrupt") from None
        if not isinstance(toc, dict) or toc.get("format") != ARTIFACT_FORMAT:
            found = toc.get("format") if isinstance(toc, dict) else None
            raise ArtifactError(f"artifact format {found!r}, this code reads {ARTIFACT_FORMAT}",
                                code="artifact.format")
        if revision is not None and toc.get("revision") != revision:
            raise ArtifactError(f"the artifact is of revision {toc.get('revision')!r}, not {revision}",
                                code="artifact.stale")
        self.revision = int(toc["revision"])
        self.inputs_sha256 = str(toc.get("inputs_sha256"))
        self._data = memoryview(payload)[start + size:]
        segments = [toc.get("index"), *(toc.get("blocks") or [])]
        for segment in segments:
            _check(isinstance(segment, list) and len(segment) == 2 and all(isinstance(v, int) for v in segment)
                   and segment[0] >= 0 and segment[1] >= 0 and segment[0] + segment[1] <= len(self._data),
                   "a segment lies outside the payload")
        self._segments: list[list[int]] = segments  # type: ignore[assignment]
        self._blocks: list[bytes | None] = [None] * (len(segments) - 1)
        self._lock = threading.Lock()
        try:
            index = json.loads(self._segment(0, "the index"))
        except ValueError:
            raise ArtifactError("the artifact's index is not JSON", code="artifact.corrupt") from None
        n = toc.get("strategies")
        if not isinstance(index, dict) or not isinstance(n, int):
            raise ArtifactError("artifact index: not an index", code="artifact.corrupt")
        for column in _COLUMNS:
            _check(isinstance(index.get(column), list) and len(index[column]) == n, f"column {column} is not {n} long")
        self.size: int = n
        self.ids: list[str] = index["ids"]
        self.versions: list[int] = index["versions"]
        self.weights: list[int] = index["weights"]
        self.statuses: list[str] = index["statuses"]
        self.tenants: list[list[str]] = index["tenants"]
        self.events: list[list[str]] = index["events"]
        self.sources: list[str] = index["sources"]
        self.yaml_sha256: list[str] = index["yaml_sha256"]
        self.loc: list[list[int]] = index["loc"]
        order = index.get("order")
        if not isinstance(order, dict):
            raise ArtifactError("artifact index: no selection order", code="artifact.corrupt")
        for positions in order.values():
            _check(isinstance(positions, list) and all(type(p) is int and 0 <= p < n for p in positions),
                   "a selection order names no strategy")
        self.order: dict[str, list[int]] = order

    def _segment(self, number: int, what: str) -> bytes:
        at, size = self._segments[number]
        return _inflate(bytes(self._data[at:at + size]), what)

    def _block(self, number: int) -> bytes:
        block = self._blocks[number] if 0 <= number < len(self._blocks) else None
        if block is None:
            _check(0 <= number < len(self._blocks), f"block {number} does not exist")
            with self._lock:
                block = self._blocks[number]
                if block is None:
                    block = self._blocks[number] = self._segment(number + 1, f"block {number}")
        return block

    def parts(self, pos: int) -> tuple[bytes, bytes, bytes]:
        """The stored (match, model, flow) JSON of the strategy at ``pos``."""
        loc = self.loc[pos]
        _check(isinstance(loc, list) and len(loc) == 5 and all(type(v) is int and v >= 0 for v in loc),
               f"strategy {pos} has no location")
        number, at, match, model, flow = loc
        block = self._block(number)
        _check(at + match + model + flow <= len(block), f"strategy {pos} lies outside its block")
        return (block[at:at + match], block[at + match:at + match + model],
                block[at + match + model:at + match + model + flow])

    def records(self) -> Iterator[Record]:
        """Every stored record (to build the next revision's artifact without compiling again)."""
        for pos in range(self.size):
            match, model, flow = self.parts(pos)
            yield Record(self.ids[pos], self.versions[pos], self.weights[pos], self.statuses[pos],
                         tuple(self.tenants[pos]), tuple(self.events[pos]), self.sources[pos],
                         self.yaml_sha256[pos], match, model, flow)

    def members(self) -> list[ArtifactMember]:
        return [ArtifactMember(self, pos) for pos in range(self.size)]

    @property
    def active(self) -> dict[str, int]:
        return dict(zip(self.ids, self.versions, strict=True))


def read(fetch: Callable[[dict[str, Any]], bytes], pointer: dict[str, Any] | None, revision: int | None) -> Artifact:
    """The verified artifact a revision's ``pointer`` names; ``fetch(pointer)`` returns its bytes
    (:meth:`~powerx_agent.adapters.strategies_store.StrategiesStore.artifact`)."""
    if not pointer or (revision is not None and pointer.get("revision") != revision):
        raise ArtifactError(f"revision {revision} has no artifact of its own", code="artifact.missing")
    return Artifact(fetch(pointer), sha256=str(pointer.get("sha256")), revision=revision)


def _loads(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ArtifactError(f"{what} is not JSON", code="artifact.corrupt") from None


class ArtifactMember:
    """A strategy of an artifact, compiled in two steps on first use (see the module docstring)."""

    __slots__ = ("_artifact", "_compiled", "_matcher", "event_types", "id", "pos", "source", "status", "tenants",
                 "version", "weight")

    def __init__(self, artifact: Artifact, pos: int) -> None:
        self._artifact = artifact
        self.pos = pos
        self.id: str = artifact.ids[pos]
        self.version: int = artifact.versions[pos]
        self.weight: int = artifact.weights[pos]
        self.status: str = artifact.statuses[pos]
        self.tenants: tuple[str, ...] = tuple(artifact.tenants[pos])
        self.event_types: tuple[str, ...] = tuple(artifact.events[pos])
        self.source: str = artifact.sources[pos]
        self._matcher: tuple[Condition | None, Any] | None = None
        self._compiled: CompiledStrategy | None = None

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    def _match(self) -> tuple[Condition | None, Any]:
        if self._matcher is None:
            raw = _loads(self._artifact.parts(self.pos)[0], f"{self.key}: when/pattern")
            try:
                if not isinstance(raw, dict):
                    raise ArtifactError("not a mapping", code="artifact.corrupt")
                condition = compile_condition(raw["when"], "when") if "when" in raw else None
                pattern = compile_pattern(raw["pattern"], "pattern") if "pattern" in raw else None
            except StrategyError as exc:
                raise ArtifactError(f"{self.key}: its when/pattern no longer compiles: {exc}",
                                    code="artifact.invalid") from None
            self._matcher = (condition, pattern)
        return self._matcher

    @property
    def condition(self) -> Condition | None:
        return self._match()[0]

    @property
    def pattern(self) -> Any:
        return self._match()[1]

    def full(self) -> CompiledStrategy:
        if self._compiled is None:
            _, model, flow = self._artifact.parts(self.pos)
            try:
                strategy = Strategy.model_validate_json(model)
            except ValidationError as exc:
                raise ArtifactError(f"{self.key}: its model does not validate: {exc.errors()[:1]}",
                                    code="artifact.invalid") from None
            if (strategy.id, strategy.version, strategy.weight, strategy.status, strategy.tenants,
                    strategy.on.event) != (self.id, self.version, self.weight, self.status, self.tenants,
                                           self.event_types):
                raise ArtifactError(f"{self.key}: the index and the model disagree", code="artifact.corrupt")
            condition, pattern = self._match()
            stored = _loads(flow, f"{self.key}: flow")
            try:
                compiled = compile_checked(strategy, self.source, condition, pattern)
                template = FlowTemplate.from_dict(self.id, self.version, stored) if stored is not None else None
            except (StrategyError, TaskflowError, KeyError, TypeError, ValueError) as exc:
                raise ArtifactError(f"{self.key}: does not compile from the artifact: {exc}",
                                    code="artifact.invalid") from None
            self._compiled = replace(compiled, flow_template=template)
        return self._compiled


def check_active(artifact: Artifact, active: Mapping[str, Any]) -> None:
    """Raise unless the artifact holds exactly the ``active`` versions (a revision's active map)."""
    if artifact.active != {k: int(v) for k, v in active.items()}:
        raise ArtifactError("the artifact does not hold the revision's active versions",
                            code="artifact.stale")
