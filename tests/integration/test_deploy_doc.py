"""docs/deploy.md's first steps after ``cdk deploy`` (load the tenants, smoke-test) run verbatim, with
``--stack PowerXAgent``, against a stack whose outputs name the embedded runtime's resources."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from typer.testing import CliRunner

from powerx_agent.cli.connect import STACK_OUTPUTS
from powerx_agent.cli.main import app
from powerx_agent.settings import load_settings
from tests.conftest import REPO

DOC = REPO / "docs" / "deploy.md"
STACK = "PowerXAgent"


def commands(section: str) -> list[list[str]]:
    text = DOC.read_text()
    body = text[text.index(section):]
    body = body[:body.index("\n### ", 1)] if "\n### " in body[1:] else body
    found = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("powerx-agent "):
                found.append(shlex.split(line.replace("<you>", "tests"))[1:])
    return found


@pytest.fixture()
def stack(rt) -> str:
    """A CloudFormation stack in the embedded runtime whose outputs are its resources' names and URLs."""
    settings = load_settings()
    values = {"EVENT_BUS_NAME": settings.event_bus, "MATCH_QUEUE_URL": settings.match_queue_url,
              "INGEST_DLQ_URL": settings.ingest_dlq_url, "EVENTS_TABLE": settings.events_table,
              "WORKFLOWS_TABLE": settings.workflows_table, "STRATEGIES_TABLE": settings.strategies_table,
              "TENANTS_TABLE": settings.tenants_table, "AUDIT_TABLE": settings.audit_table}
    outputs = {key: {"Value": values[env]} for key, env in STACK_OUTPUTS.items() if values.get(env)}
    cfn = rt.client("cloudformation")
    if not any(s["StackName"] == STACK for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]):
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps({
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}))
    return STACK


def test_given_the_deploy_guide_when_its_tenant_and_smoke_steps_run_then_each_succeeds(rt, stack):
    steps = commands("### 4.2 Load the tenants") + commands("### 4.3 Smoke-test the stack")
    assert [s[2:4] for s in steps] == [["tenants", "apply"]] * 3 + [["tenants", "list"], ["tenants", "show"],
                                                                    ["tenants", "disable"], ["smoke", "--tenant"]]
    runner = CliRunner()
    for step in steps:
        assert step[:2] == ["--stack", stack]
        out = runner.invoke(app, ["--endpoint-url", f"http://127.0.0.1:{rt.port}", *step])
        assert out.exit_code == 0, f"{shlex.join(step)}\n{out.output}"
    assert "14/14 checks passed" in out.output
