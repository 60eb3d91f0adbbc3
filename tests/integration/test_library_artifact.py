"""Compiled library artifacts on the embedded runtime: publishing a revision stores its artifact in
agent_strategies; a matcher in a fresh process state serves it in a handful of reads; a tampered
chunk is refused (counted) and the revision is compiled from its YAML instead; ``strategy library
status`` says so and ``strategy library rebuild`` repairs it; a directory is published and approved
as one revision."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.dynamo import key
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.match.service import Matcher
from powerx_agent.ops import strategy as lifecycle

STRATEGY = """id: {sid}
version: {version}
status: approved
owner: tests@example.com
tenants: [{tenant}]
on: {{event: test.artifact.{uid}}}
when: {{path: $.payload.kind, equals: k{n}}}
weight: {n}
flow:
  nodes:
    - {{id: act, plugin: report-renderer, input: {{v: {version}}}}}
"""


class Counting:
    def __init__(self) -> None:
        self.library_errors = 0

    def add(self, name: str, value: float, *args: Any, **kwargs: Any) -> None:
        self.library_errors += int(value) if name == spec.METRICS["library_errors"] else 0


def cold_matcher() -> tuple[Matcher, Counting, dict[str, int]]:
    """A matcher with nothing cached, over the runtime's DynamoDB, counting its requests (on a client of
    its own: the shared one also carries the runtime's background work, the audit stream's reads)."""
    import boto3

    deps = get_deps()
    calls = {"n": 0}
    ddb = boto3.session.Session().client("dynamodb", region_name=deps.settings.region,
                                         endpoint_url=deps.settings.endpoint_url)
    ddb.meta.events.register("before-call.dynamodb.*", lambda **kw: calls.__setitem__("n", calls["n"] + 1))
    from powerx_agent.adapters.strategies_store import StrategiesStore

    fresh = SimpleNamespace(settings=deps.settings, flags=deps.flags, process_state={}, clock=deps.clock,
                            strategies=StrategiesStore(ddb, deps.settings.strategies_table))
    metrics = Counting()
    return Matcher(fresh, metrics), metrics, calls


def write_library(directory: Path, uid: str, count: int, version: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (directory / f"s{n}.yaml").write_text(STRATEGY.format(sid=f"art-{uid}-{n}", version=version, n=n,
                                                              uid=uid, tenant="acme"))
    return directory


def test_given_a_published_library_when_a_cold_matcher_loads_then_it_reads_the_artifact_not_every_version(
        rt, uid, tmp_path):
    runner = CliRunner()
    library = write_library(tmp_path / "lib", uid, 30)
    out = runner.invoke(app, ["strategy", "publish", str(library), "--author", "alice"])
    assert out.exit_code == 0, out.output
    assert "30 published, 0 already published" in out.output
    again = runner.invoke(app, ["strategy", "publish", str(library), "--author", "alice"])
    assert "0 published, 30 already published" in again.output
    out = runner.invoke(app, ["strategy", "approve", "--dir", str(library), "--approver", "bob", "--reason", "import"])
    assert out.exit_code == 0, out.output
    assert "30 strategies approved by bob" in out.output
    deps = get_deps()
    kinds = [r["kind"] for r in deps.audit.chain(lifecycle.chain(f"art-{uid}-7"))]
    assert kinds == ["strategy.published", "strategy.approved"]

    matcher, metrics, calls = cold_matcher()
    served = matcher.library()
    assert calls["n"] <= 4 and metrics.library_errors == 0  # the revision head and the artifact's chunks
    decision, selected = served.index.decide(event_type=f"test.artifact.{uid}", tenant_id="acme", event_id="e",
                                             doc={"payload": {"kind": "k7"}}, bus_event={})
    # the index names its revision; the library served adds +c<N> while canaries (an earlier test's) run
    assert selected.strategy.id == f"art-{uid}-7" and decision.library_revision == served.index.revision
    assert served.revision.split("+c")[0] == served.index.revision

    status = runner.invoke(app, ["strategy", "library", "status", "--deep"])
    assert status.exit_code == 0 and "ok" in status.output, status.output


def test_given_a_tampered_artifact_when_served_then_refused_counted_compiled_from_yaml_and_rebuild_repairs(
        rt, uid, tmp_path):
    deps = get_deps()
    runner = CliRunner()
    library = write_library(tmp_path / "lib", uid, 3)
    lifecycle.publish(deps, library, "alice")
    lifecycle.approve_published(deps, library, "bob", "import")
    pointer = deps.strategies.revision()["artifact"]
    ddb = rt.client("dynamodb")
    chunk = key(pk=f"ARTIFACT#{pointer['sha256']}", sk="C#00000")
    data = bytearray(ddb.get_item(TableName=deps.settings.strategies_table, Key=chunk)["Item"]["data"]["B"])
    data[len(data) // 2] ^= 0x20
    ddb.put_item(TableName=deps.settings.strategies_table, Item={**chunk, "data": {"B": bytes(data)}})

    status = runner.invoke(app, ["strategy", "library", "status"])
    assert status.exit_code == 1 and "artifact.corrupt" in status.output, status.output
    matcher, metrics, _ = cold_matcher()
    served = matcher.library()
    assert metrics.library_errors == 1  # refused and counted ...
    assert served.get(f"art-{uid}-2") is not None  # ... and the revision compiled from its YAML

    out = runner.invoke(app, ["strategy", "library", "rebuild", "--actor", "carol"])
    assert out.exit_code == 0, out.output
    assert runner.invoke(app, ["strategy", "library", "status"]).exit_code == 0
    matcher, metrics, _ = cold_matcher()
    matcher.library()
    assert metrics.library_errors == 0
    rebuilt = deps.audit.chain("OPS#library")[-1]
    assert rebuilt["kind"] == "library.rebuilt" and rebuilt["data"]["actor"] == "carol"


def test_given_a_library_with_an_error_when_published_then_nothing_is_published(rt, uid, tmp_path):
    library = write_library(tmp_path / "lib", uid, 3)
    (library / "s1.yaml").write_text((library / "s1.yaml").read_text().replace("equals:", "equalz:"))
    out = CliRunner().invoke(app, ["strategy", "publish", str(library), "--author", "alice"])
    assert out.exit_code == 1 and "not published, fix these first" in out.output
    assert get_deps().strategies.version(f"art-{uid}-0", 1) is None
