"""powerx-agent workflow view: one self-contained page, rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from powerx_agent.cli import view_cmd
from powerx_agent.local.demo import run_c1

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
workflow_app = typer.Typer()
view_cmd.register(workflow_app)
workflow_app.command("noop", hidden=True)(lambda: None)  # keep `view` a named subcommand


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/ensure-chromium installs Debian's chromium with apt-get)")
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           "--disable-default-apps", f"--user-data-dir={user_data}", *args],
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture()
def c1_view(rt, uid, tmp_path):
    result = run_c1(rt, suffix=f"-{uid}")
    assert result.ok, result.expectations
    out = tmp_path / "view.html"
    cli = runner.invoke(workflow_app, ["view", result.workflow_id, "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    return result, out


def test_given_c1_view_when_html_read_then_self_contained_without_network_references(c1_view):
    _, out = c1_view
    html = out.read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html and " src=" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "url(http" not in html


def test_given_c1_view_when_rendered_in_chromium_then_graph_nodes_decision_event_timeline_and_link(c1_view, tmp_path):
    result, out = c1_view
    done = chromium("--dump-dom", out.as_uri(), user_data=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for node, status in (("render", "SUCCEEDED"), ("archive", "SUCCEEDED"), ("tell-owner", "SUCCEEDED")):
        assert re.search(rf'data-state="{node}" data-status="{status}"', dom), node
    assert 'data-state="approve.skipped" data-status="SKIPPED"' in dom
    assert re.search(r'<tr data-node="render">.*?status-succeeded', dom, re.S)
    assert "report-on-job-completed" in dom and 'id="decision"' in dom
    assert result.event_id in dom
    assert "ExecutionSucceeded" in dom and "TaskStateEntered" in dom
    link = re.search(r'id="console-link" href="([^"]+)"', dom).group(1)
    assert link.startswith("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/")
    assert "workflow.succeeded" in dom


def test_given_c1_view_when_screenshot_taken_then_png_written(c1_view, tmp_path):
    _, out = c1_view
    shot = tmp_path / "view.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars", out.as_uri(),
                    user_data=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
