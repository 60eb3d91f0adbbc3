"""The matcher serves a published revision from its compiled artifact, loads it again only when the
revision changes, and never serves an artifact that does not verify: it counts the error and
compiles the revision's YAML instead, or serves the last good revision."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from powerx_agent import spec
from powerx_agent.clock import SYSTEM_CLOCK
from powerx_agent.errors import AgentError
from powerx_agent.match.service import Matcher
from powerx_agent.strategy.artifact import encode, record_of
from powerx_agent.strategy.loader import load_strategy_text

STRATEGY = (Path(__file__).resolve().parents[2] / "strategies" / "report-on-job-completed.yaml").read_text()
SID = "report-on-job-completed"


class PublishedLibrary:
    """The revision item, artifacts by digest and version YAML, counting what the matcher reads."""

    def __init__(self) -> None:
        self.item: dict[str, Any] = {"revision": 0, "active": {}}
        self.payloads: dict[str, bytes] = {}
        self.yaml = STRATEGY
        self.artifact_reads = 0
        self.documents_read = 0

    def publish(self, revision: int, with_artifact: bool = True) -> dict[str, Any]:
        compiled, _ = load_strategy_text(STRATEGY, f"{SID}@v3")
        built = encode([record_of(compiled, hashlib.sha256(STRATEGY.encode()).hexdigest())], revision)
        pointer = {"sha256": built.sha256, "chunks": 1, "revision": revision}
        self.payloads[built.sha256] = built.payload
        kept = [p for p in self.item.get("artifacts", [])][:2]
        self.item = {"revision": revision, "active": {SID: 3}}
        if with_artifact:
            self.item |= {"artifact": pointer, "artifacts": [pointer, *kept]}
        else:
            self.item["artifacts"] = kept
        return pointer

    def revision(self) -> dict[str, Any]:
        return dict(self.item)

    def revision_head(self) -> dict[str, Any]:
        return {k: v for k, v in self.item.items() if k != "active"}

    def artifact(self, pointer: dict[str, Any]) -> bytes:
        self.artifact_reads += 1
        if pointer["sha256"] not in self.payloads:
            raise AgentError("no such artifact", code="artifact.missing")
        return self.payloads[pointer["sha256"]]

    def documents(self, active: dict) -> list[tuple[str, str]]:
        self.documents_read += 1
        return [(f"{sid}@v{v}", self.yaml) for sid, v in active.items()]


class CountingMetrics:
    def __init__(self) -> None:
        self.library_errors = 0

    def add(self, name: str, value: float, *args: Any, **kwargs: Any) -> None:
        if name == spec.METRICS["library_errors"]:
            self.library_errors += int(value)


def matcher_over(store: PublishedLibrary) -> tuple[Matcher, CountingMetrics]:
    deps = SimpleNamespace(settings=SimpleNamespace(library_source="table", library_refresh_seconds=0.0),
                           flags=SimpleNamespace(enabled=lambda name, ctx=None: True), strategies=store,
                           process_state={}, clock=SYSTEM_CLOCK)
    metrics = CountingMetrics()
    return Matcher(deps, metrics=metrics), metrics


def test_given_unchanged_revision_when_refreshed_then_artifact_read_once_and_no_yaml_compiled():
    store = PublishedLibrary()
    store.publish(4)
    matcher, metrics = matcher_over(store)
    first = matcher.library()
    again = matcher.library()
    assert first is again and first.revision == "r4" and store.artifact_reads == 1
    assert first.get(SID).strategy.version == 3
    store.publish(5)
    assert matcher.library().revision == "r5" and store.artifact_reads == 2
    assert store.documents_read == 0 and metrics.library_errors == 0


def test_given_a_corrupt_artifact_when_loading_then_it_is_refused_counted_and_the_yaml_serves_the_revision():
    store = PublishedLibrary()
    pointer = store.publish(7)
    payload = bytearray(store.payloads[pointer["sha256"]])
    payload[-10] ^= 0x01  # one bit in the last block
    store.payloads[pointer["sha256"]] = bytes(payload)
    matcher, metrics = matcher_over(store)
    library = matcher.library()
    assert library.revision == "r7" and store.documents_read == 1 and metrics.library_errors == 1
    assert library.get(SID) is not None


def test_given_a_revision_without_its_artifact_when_loading_then_counted_and_compiled_from_yaml():
    store = PublishedLibrary()
    store.publish(2)
    store.publish(3, with_artifact=False)  # e.g. bumped by a tool that builds no artifact
    matcher, metrics = matcher_over(store)
    assert matcher.library().revision == "r3"
    assert store.documents_read == 1 and metrics.library_errors == 1


def test_given_a_cold_matcher_and_a_revision_broken_everywhere_when_loading_then_the_last_good_artifact_serves():
    store = PublishedLibrary()
    store.publish(8)
    store.publish(9, with_artifact=False)
    store.yaml = "id: [unclosed\n"
    matcher, metrics = matcher_over(store)
    library = matcher.library()
    assert library.revision == "r8" and library.get(SID) is not None
    assert metrics.library_errors == 2  # the missing artifact, then the YAML that does not compile
    matcher.library()  # the broken revision is not compiled again on every refresh
    assert store.documents_read == 1


def test_given_a_warm_matcher_and_a_broken_new_revision_when_refreshed_then_it_keeps_the_last_good():
    store = PublishedLibrary()
    store.publish(10)
    matcher, metrics = matcher_over(store)
    assert matcher.library().revision == "r10"
    pointer = store.publish(11)
    store.payloads[pointer["sha256"]] = b"PXLIB\x00garbage"
    store.yaml = "not: a strategy\n"
    assert matcher.library().revision == "r10"
    assert metrics.library_errors == 2


def test_given_a_decision_of_an_earlier_revision_when_its_library_is_asked_then_served_while_its_artifact_is_kept():
    store = PublishedLibrary()
    for revision in (1, 2, 3):
        store.publish(revision)
    matcher, metrics = matcher_over(store)
    assert matcher.library_at("r3") is matcher.library()
    earlier = matcher.library_at("r2")
    assert earlier is not None and earlier.revision == "r2" and earlier.get(SID).strategy.version == 3
    assert matcher.library_at("r2+c4").revision == "r2"  # the canaries that ran then are not reproduced
    store.publish(4)  # the artifact of r1 is no longer kept (three are)
    assert matcher.library_at("r1") is None
    assert matcher.library_at("r99") is None and matcher.library_at("dir:strategies") is None
    assert metrics.library_errors == 0
