"""Docs are executable: every ```bash block of docs/runbook.md and of the README runs, as written, against the
embedded runtime.

Each block is run by ``bash -e -o pipefail`` in a scratch directory that looks like a checkout (``strategies``,
``tests``, ``scripts``, ``config`` and ``.venv`` link to the repository), with ``.venv/bin`` first on PATH and the runtime's environment
(its endpoint, region, credentials; ``ENDPOINT`` for the README's ``--endpoint-url``), so ``powerx-agent``
talks to the embedded stack the way it talks to a deployed one with ``--stack``. The blocks use shell variables for what an operator
fills in; the harness sets them from objects it creates first (a workflow whose plugin failed, its review,
a file of events, a second published strategy version):

    ME      who runs the command (audited)         WF      a workflow id (escalated: a plugin failed)
    REVIEW  a manual review id                     RELEASE a release (a second deploy is published first)
    START / END   a window of the EventBridge archive

and the files a block reads (``critical.jsonl``: events to replay; ``stuck.jsonl``: the match DLQ message of an
Express workflow whose start was lost, for the runbook section on it, where ``WF`` is that PENDING workflow).

A block that cannot run here is marked on the line before it with ``<!-- not run: REASON -->`` (the reason
is required and printed). To cover a new document, add it to DOCS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from powerx_agent import spec
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.deployer import publish_release

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "docs" / "runbook.md"]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```bash\n(?P<body>.*?)\n```", re.DOTALL)
SECTION = re.compile(r"^## (?P<title>.+)$", re.MULTILINE)
EXPRESS_LOST = "An Express workflow that never started"  # the runbook section whose WF is a stuck workflow
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>\S[^>]*?)\s*-->")
BLOCK_TIMEOUT_S = 180


@dataclass
class Block:
    doc: str
    line: int
    body: str
    skip_reason: str | None
    section: str


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in BLOCK.finditer(text):
        marker = NOT_RUN.search(match.group("before"))
        line = text[:match.start("body")].count("\n") + 1
        headings = SECTION.findall(text, 0, match.start())
        found.append(Block(path.name, line, match.group("body"), marker.group("reason") if marker else None,
                           headings[-1] if headings else ""))
    return found


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _detail(uid: str, **payload: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-{uid}", "idempotency_key": f"key-{uid}",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "runbook"},
            "payload": payload or {"job": {"id": uid, "type": "report", "rows": 10}}}


def _lost_express_start(rt: Any, uid: str) -> tuple[str, str]:
    """An Express workflow left PENDING without an execution, and its match message in the match DLQ: the matcher
    dies in StartExecution (injected on the client it calls), and the redeliveries are refused by the guard."""
    detail = {**_detail(uid), "payload": {"job": {"id": uid, "type": "report", "retriable": False},
                                          "error": {"message": "disk full"}}}
    workflow_id = workflow_id_for("acme", detail["idempotency_key"])
    sfn = get_deps().client("stepfunctions")

    def lose_the_start(params: dict[str, Any], **_: Any) -> None:
        if params.get("name") == workflow_id:
            raise RuntimeError("injected: the matcher dies in StartExecution")

    sfn.meta.events.register("provide-client-params.states.StartExecution", lose_the_start)
    try:
        rt.put_event("plugin.job.failed", detail)
        assert rt.wait_idle(timeout=90)
    finally:
        sfn.meta.events.unregister("provide-client-params.states.StartExecution", lose_the_start)
    (body,) = [m["Body"] for m in rt.dlq_messages(spec.MATCH_DLQ.name) if workflow_id in m["Body"]]
    workflow = get_deps().workflows.get(workflow_id)
    assert workflow["status"] == "PENDING" and not workflow.get("execution_arn")
    return workflow_id, body


@pytest.fixture(scope="module")
def operator(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scratch directory and environment an operator would have, and the objects the runbook names."""
    rt = runtime
    work = tmp_path_factory.mktemp("runbook")
    for name in ("strategies", "tests", "scripts", "config", ".venv"):
        (work / name).symlink_to(REPO / name)
    start = time.time() - 5
    env = {**os.environ, **rt.environment, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "NO_COLOR": "1", "COLUMNS": "200"}
    # per document, a workflow whose first plugin fails for good: escalated to a person, with a review
    rt.sandbox.fail_always("report-renderer", 503)
    uid = f"runbook-{int(time.time())}"
    for doc in DOCS:
        rt.put_event("plugin.job.completed", _detail(f"{uid}-{doc.stem}"))
    assert rt.wait_idle(timeout=90)
    rt.sandbox.reset()
    escalated = {}
    for doc in DOCS:
        wf = workflow_id_for("acme", f"key-{uid}-{doc.stem}")
        assert get_deps().workflows.get(wf)["status"] == "ESCALATED"
        (review,) = get_deps().workflows.open_reviews_for(wf)
        escalated[doc.name] = {"WF": wf, "REVIEW": review["review_id"]}
    # critical events to replay (one EventBridge event per line)
    lines = [{"source": "powerx.plugins", "detail-type": "plugin.job.completed", "detail": _detail(f"{uid}-r{i}")}
             for i in range(2)]
    (work / "critical.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    # an Express workflow whose start was lost, and its match DLQ message as the operator saves it
    stuck, body = _lost_express_start(rt, f"{uid}-stuck")
    (work / "stuck.jsonl").write_text(body + "\n")
    # a second version of the C-1 strategy, approved, so there is something to roll back from
    v4 = work / "next" / "report-on-job-completed.yaml"
    v4.parent.mkdir()
    v4.write_text((REPO / "strategies" / "report-on-job-completed.yaml").read_text().replace("version: 3", "version: 4"))
    for command in (f"powerx-agent strategy publish {v4.parent} --author runbook-tests",
                    "powerx-agent strategy approve report-on-job-completed --version 4 --approver runbook-tests "
                    "--reason 'runbook drill'"):
        done = subprocess.run(["bash", "-c", command], env=env, cwd=work, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
    assert rt.wait_idle(timeout=60)
    # a second deploy (a release on top of the one the runtime published), so there is one to revert
    release = f"r-{uid}"
    publish_release(rt.client("lambda"), rt.deployment, release)
    env.update({"ME": "runbook-tests", "ENDPOINT": rt.environment["AWS_ENDPOINT_URL"], "RELEASE": release,
                "START": _iso(start), "END": _iso(time.time() + 60)})
    return {"env": env, "cwd": work, "per_doc": escalated,
            "stuck": {"WF": stuck, "replayed": workflow_id_for("acme", f"key-{uid}-stuck#replay-1")},
            "per_section": {("runbook.md", EXPRESS_LOST): {"WF": stuck}}}


ALL = [b for doc in DOCS for b in blocks(doc)]


def test_given_the_docs_when_parsed_then_blocks_are_found_and_every_skip_says_why():
    assert len(ALL) >= 6
    assert [b.section for b in ALL if b.doc == "runbook.md"].count(EXPRESS_LOST) == 1
    for block in ALL:
        assert block.skip_reason is None or len(block.skip_reason) >= 10, block


@pytest.mark.parametrize("block", ALL, ids=[f"{b.doc}:{b.line}" for b in ALL])
def test_given_a_command_block_of_the_docs_when_run_against_the_embedded_runtime_then_it_succeeds(block, operator,
                                                                                                  runtime):
    if block.skip_reason:
        pytest.skip(f"{block.doc}:{block.line}: {block.skip_reason}")
    env = {**operator["env"], **operator["per_doc"][block.doc],
           **operator["per_section"].get((block.doc, block.section), {})}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.body], env=env,
                          cwd=operator["cwd"], capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert runtime.wait_idle(timeout=90)
    assert done.returncode == 0, (f"{block.doc}:{block.line} exited {done.returncode}\n$ {block.body}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_given_the_runbook_when_every_block_ran_then_the_flags_are_back_on_and_the_trail_is_complete(operator):
    # the runbook's own blocks switch the orchestrator off and on again, and repair then verify at the end
    assert get_deps().flags.enabled("agent-orchestrator")
    verify = subprocess.run(["bash", "-c", "powerx-agent audit verify --since 1h"], env=operator["env"],
                            cwd=operator["cwd"], capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_given_the_express_start_lost_section_when_it_ran_then_the_workflow_is_stopped_and_its_event_ran_anew(
        operator):
    workflows = get_deps().workflows
    assert workflows.get(operator["stuck"]["WF"])["status"] == "STOPPED"
    assert workflows.get(operator["stuck"]["replayed"])["status"] == "SUCCEEDED"
