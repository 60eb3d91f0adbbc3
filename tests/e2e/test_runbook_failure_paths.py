"""The runbook's "Walk the failure paths locally" section, run block by block against the embedded
runtime, and what each block says happens does happen (retried then SUCCEEDED, ESCALATED with a review,
a callback answered, the faults reset)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from powerx_agent.deps import get_deps
from powerx_agent.ops.workflow import list_workflows

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Walk the failure paths locally"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```bash\n(?P<body>.*?)\n```", re.DOTALL)


def section_blocks() -> list[str]:
    text = (REPO / "docs" / "runbook.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    part = text[start:end if end > 0 else len(text)]
    return [m["body"] for m in BLOCK.finditer(part) if "not run:" not in m["before"]]


@pytest.fixture()
def run_block(rt, tmp_path):
    for name in ("strategies", "tests", "scripts"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, **rt.environment, "NO_COLOR": "1", "COLUMNS": "200",
           "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def run(body: str) -> str:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)
        assert rt.wait_idle(timeout=90)
        assert done.returncode == 0, f"$ {body}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    return run


def newest_acme() -> dict:
    (workflow,) = list_workflows(get_deps(), "acme", None, 1)
    return workflow


def test_given_the_failure_paths_section_when_each_block_runs_then_each_outcome_is_as_written(rt, run_block):
    blocks = section_blocks()
    assert len(blocks) == 8, "update this test with the section"
    run_block(blocks[0])  # fail --times 2, send C-1
    shown = run_block(blocks[1])
    assert re.search(r"500 .*report-renderer.*\n500 .*report-renderer.*\n200 .*report-renderer", shown), shown
    assert "SUCCEEDED" in shown
    run_block(blocks[2])  # report-renderer down, send C-1
    shown = run_block(blocks[3])
    assert "ESCALATED" in shown and "node_failed" in shown and "render" in shown
    assert newest_acme()["status"] == "ESCALATED"
    run_block(blocks[4])  # slow once, flaky archiver, send C-1: retried, then SUCCEEDED
    assert newest_acme()["status"] == "SUCCEEDED"
    run_block(blocks[5])  # asynchronous provisioner, send the approved request
    shown = run_block(blocks[6])  # list it, then a notification fails once, send C-1
    assert "provision-on-request-approved" in shown and "SUCCEEDED" in shown
    assert newest_acme()["status"] == "ESCALATED"
    shown = run_block(blocks[7])  # status, then reset
    assert "report-renderer" not in shown or "answers" in shown
    assert rt.sandbox.describe()["plugins"] == {} and rt.sandbox.describe()["service_failures"] == {}
