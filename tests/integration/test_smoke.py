"""``powerx-agent smoke`` against the embedded runtime: the same commands docs/deploy.md runs against a
stack, here with ``--endpoint-url``; and a smoke that must fail when the engine does not work."""

from __future__ import annotations

from typer.testing import CliRunner

from powerx_agent.cli.main import app
from tests.conftest import REPO

runner = CliRunner()


def cli(rt, *args: str):
    return runner.invoke(app, ["--endpoint-url", f"http://127.0.0.1:{rt.port}", *args])


def test_given_the_smoke_tenant_applied_when_smoke_runs_then_every_check_passes(rt):
    applied = cli(rt, "tenants", "apply", str(REPO / "config" / "tenants.smoke.yaml"), "--by", "tests")
    assert applied.exit_code == 0, applied.output

    out = cli(rt, "smoke", "--tenant", "smoke")

    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 14 and all(line.startswith("PASS") for line in lines), out.output
    scenarios = [line.split()[1] for line in lines]
    assert (scenarios.count("setup"), scenarios.count("C-1"), scenarios.count("C-2")) == (1, 7, 6)
    assert "14/14 checks passed" in out.output


def test_given_a_tenant_that_is_not_registered_when_smoke_runs_then_it_fails_at_setup(rt, uid):
    out = cli(rt, "smoke", "--tenant", f"nobody-{uid}")

    assert out.exit_code == 1
    (line,) = [line for line in out.output.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert line.startswith("FAIL") and "not registered" in line


def test_given_the_renderer_failing_when_smoke_runs_then_the_c1_outcome_checks_fail(rt):
    assert cli(rt, "tenants", "apply", str(REPO / "config" / "tenants.smoke.yaml")).exit_code == 0
    rt.sandbox.fail_always("report-renderer", 400)  # a 4xx is not retried: the node fails at once

    out = cli(rt, "smoke", "--tenant", "smoke", "--timeout", "60")

    assert out.exit_code == 1
    failed = [line for line in out.output.splitlines() if line.startswith("FAIL")]
    assert any("execution SUCCEEDED" in line for line in failed), out.output
    assert not any(line.split()[1] == "C-2" for line in failed), out.output
