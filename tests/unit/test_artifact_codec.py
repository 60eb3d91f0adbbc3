"""Compiled library artifacts: what a matcher serves from one is exactly what compiling the YAML
gives (decisions, strategies, flows), and any artifact that is not intact is refused."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy import artifact as artifact_mod
from powerx_agent.strategy.artifact import Artifact, ArtifactError, check_active, encode, read, record_of
from powerx_agent.strategy.library import build_library, library_from_artifact
from powerx_agent.strategy.loader import load_strategy_text
from powerx_agent.taskflow.asl import TEMPLATE_ARNS, FunctionArns, compile_flow

REPO = Path(__file__).resolve().parents[2]
ARNS = FunctionArns(*(f"arn:aws:lambda:eu-west-1:123456789012:function:live-{n}:live"
                      for n in ("plugin", "notify", "review", "workflow")))
EVENT_TYPES = ["a.created", "a.deleted", "b.done"]
TENANTS = ["acme", "globex", "*"]


def repo_texts() -> list[tuple[str, str]]:
    paths = sorted((REPO / "strategies").glob("*.yaml"))
    return [(p.stem, p.read_text()) for p in paths]


def generated(i: int, event_type: str, tenant: str, weight: int, threshold: int, kind: str) -> str:
    return f"""id: g-{i:03d}
version: {i % 3 + 1}
status: approved
owner: tests@example.com
tenants: ["{tenant}"]
on: {{event: {event_type}}}
when:
  all:
    - {{path: $.payload.kind, equals: {kind}}}
    - {{path: $.payload.n, gt: {threshold}}}
weight: {weight}
variables:
  item: $.payload.id
flow:
  nodes:
    - id: first
      plugin: p{i % 4}
      input: {{item: "${{item}}"}}
    - id: second
      after: [first]
      when: {{path: $.payload.n, gt: {threshold + 2}}}
      notify: {{to: "${{owner}}", template: done}}
"""


def records_of(texts: list[tuple[str, str]]) -> list:
    out = []
    for name, text in texts:
        compiled, findings = load_strategy_text(text, name)
        assert compiled is not None, findings
        out.append(record_of(compiled, hashlib.sha256(text.encode()).hexdigest()))
    return out


def served(texts: list[tuple[str, str]], revision: int = 1):
    built = encode(records_of(texts), revision)
    return library_from_artifact(Artifact(built.payload, sha256=built.sha256, revision=revision), f"r{revision}")


def test_given_the_repo_library_when_served_from_an_artifact_then_strategies_and_flows_equal_the_compiled_yaml():
    texts = repo_texts()
    library = served(texts)
    for name, text in texts:
        expected, _ = load_strategy_text(text, name)
        got = library.get(expected.strategy.id)
        assert got.strategy == expected.strategy and got.source == name
        assert got.variables.names == expected.variables.names
        assert set(got.node_whens) == set(expected.node_whens) and set(got.node_inputs) == set(expected.node_inputs)
        assert got.flow_template.instantiate(ARNS) == compile_flow(expected.strategy, ARNS)


strategy_specs = st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(TENANTS), st.integers(0, 3),
                                    st.integers(0, 10), st.sampled_from(["x", "y"])), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(specs=strategy_specs, event_type=st.sampled_from(EVENT_TYPES), tenant=st.sampled_from(TENANTS[:2]),
       n=st.integers(0, 13), kind=st.sampled_from(["x", "y", "z"]))
def test_given_any_library_when_deciding_from_its_artifact_then_the_decision_equals_the_yaml_one(
        specs, event_type, tenant, n, kind):
    texts = [(f"g-{i:03d}", generated(i, *spec)) for i, spec in enumerate(specs)]
    from_yaml = build_library(texts, "r1")
    from_artifact = served(texts)
    doc = {"payload": {"kind": kind, "n": n, "id": "i-1"}, "event_type": event_type}
    a, sa = from_yaml.index.decide(event_type=event_type, tenant_id=tenant, event_id="e", doc=doc, bus_event={})
    b, sb = from_artifact.index.decide(event_type=event_type, tenant_id=tenant, event_id="e", doc=doc, bus_event={})
    assert a.to_dict() == b.to_dict()
    assert (sa is None) == (sb is None)
    if sa is not None:
        assert sb.strategy == sa.strategy
        assert sb.variables.render(doc, {"owner": "o"}) == sa.variables.render(doc, {"owner": "o"})


def test_given_a_served_artifact_when_nothing_was_looked_up_then_nothing_was_compiled():
    library = served([(f"g-{i:03d}", generated(i, "a.created", "*", i, 1, "x")) for i in range(5)])
    assert all(m._matcher is None and m._compiled is None for m in library.members)
    library.index.decide(event_type="b.done", tenant_id="acme", event_id="e", doc={}, bus_event={})
    assert all(m._matcher is None for m in library.members)  # another event type: still nothing


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_given_any_changed_byte_when_reading_an_artifact_then_it_is_refused(data):
    built = encode(records_of(repo_texts()), 3)
    at = data.draw(st.integers(0, len(built.payload) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(built.payload)
    tampered[at] ^= flip
    with pytest.raises(ArtifactError) as refused:
        Artifact(bytes(tampered), sha256=built.sha256, revision=3)
    assert refused.value.code == "artifact.corrupt"


def test_given_an_artifact_of_another_revision_or_format_when_reading_then_refused_with_the_reason():
    built = encode(records_of(repo_texts()), 3)
    with pytest.raises(ArtifactError) as stale:
        Artifact(built.payload, sha256=built.sha256, revision=4)
    assert stale.value.code == "artifact.stale"
    toc = json.dumps({"format": 99}).encode()
    other = artifact_mod.MAGIC + len(toc).to_bytes(4, "big") + toc
    with pytest.raises(ArtifactError) as fmt:
        Artifact(other, sha256=None, revision=None)
    assert fmt.value.code == "artifact.format"
    with pytest.raises(ArtifactError) as missing:
        read(lambda pointer: built.payload, None, 3)
    assert missing.value.code == "artifact.missing"


def test_given_a_segment_that_inflates_past_the_bound_when_reading_then_refused_without_inflating_it(monkeypatch):
    monkeypatch.setattr(artifact_mod, "MAX_SEGMENT_BYTES", 4096)
    bomb = zlib.compress(b"\0" * 10_000_000, 9)
    toc = json.dumps({"format": 1, "revision": 1, "strategies": 0, "index": [0, len(bomb)], "blocks": []}).encode()
    payload = artifact_mod.MAGIC + len(toc).to_bytes(4, "big") + toc + bomb
    with pytest.raises(ArtifactError, match="larger than 4096"):
        Artifact(payload, sha256=None, revision=1)


def test_given_a_hash_consistent_artifact_whose_index_lies_when_reading_then_refused():
    built = encode(records_of(repo_texts()), 1)
    artifact = Artifact(built.payload, sha256=built.sha256, revision=1)
    check_active(artifact, artifact.active)
    with pytest.raises(ArtifactError) as stale:
        check_active(artifact, {**artifact.active, "another": 1})
    assert stale.value.code == "artifact.stale"
    # a model that disagrees with the index is refused when it is first compiled
    records = records_of(repo_texts())
    wrong = [records[0].__class__(**{**records[0].__dict__, "weight": records[0].weight + 1}), *records[1:]]
    lying = encode(wrong, 1)
    library = library_from_artifact(Artifact(lying.payload, sha256=lying.sha256, revision=1), "r1")
    with pytest.raises(ArtifactError, match="disagree"):
        library.get(records[0].id)


def test_given_a_strategy_whose_text_holds_a_placeholder_arn_when_stored_then_its_flow_is_compiled_by_the_matcher():
    name = "g-001"
    text = generated(1, "a.created", "*", 1, 1, "x").replace('"${item}"', f'"{TEMPLATE_ARNS.plugin}"')
    compiled, findings = load_strategy_text(text, name)
    assert compiled is not None, findings
    assert record_of(compiled, "x").flow == b"null"
    assert served([(name, text)]).get(compiled.strategy.id).flow_template is None
