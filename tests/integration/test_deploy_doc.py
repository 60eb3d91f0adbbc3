"""docs/deploy.md runs: every ``powerx-agent`` command it shows (in its bash blocks and in its text)
runs verbatim, with ``--stack PowerXAgent``, against a stack whose outputs name the embedded runtime's
resources; the first event of section 5 is put with the guide's own entries. The commands that need
a real AWS account (bootstrap, deploy, destroy, the AWS CLI) are listed in ``AWS_ONLY`` with what
covers them instead, and a command added to the guide fails the inventory test until it runs here."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.cli.connect import STACK_OUTPUTS
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.deployer import publish_release
from powerx_agent.ops.release import list_releases
from tests.conftest import REPO

DOC = REPO / "docs" / "deploy.md"
STACK = "PowerXAgent"

# what the guide shows that needs an AWS account or a shell, and what checks it here instead
AWS_ONLY = {
    "make setup": "the README's set-up; .ci/run runs it on a clean clone",
    "export": "shell set-up",
    "cdk synth": "tests/infrastructure/test_cdk_cli_synth.py runs the CDK CLI's synth",
    ".venv/bin/python -m pytest tests/infrastructure": "part of make test",
    "cdk bootstrap": "needs an AWS account",
    "cdk deploy": "needs an AWS account; the template it deploys is tests/infrastructure's",
    "cdk destroy": "needs an AWS account",
    "aws secretsmanager put-secret-value": "AWS CLI against the account; the secret's shape is tested in "
                                           "tests/infrastructure/test_stack.py",
    "aws events put-events": "run here with the same entries through boto3 (the AWS CLI is not installed)",
}

ELSEWHERE = {"--endpoint-url URL smoke": "tests/integration/test_smoke.py, against the embedded runtime",
             "keys add-caller": "docs/runbook.md, Keys: run with its arguments by tests/e2e/test_docs_run.py",
             "keys rotate": "docs/runbook.md, Keys: run with its arguments by tests/e2e/test_docs_run.py"}


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _lines(block: str) -> list[str]:
    """The shell commands of a block: continuation lines and quoted line breaks joined, comments dropped."""
    found, pending = [], ""
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = line.split("  #")[0]  # a comment may hold an apostrophe: dropped before the quotes are read
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending)
        except ValueError:  # a quote still open: the command goes on
            continue
        if pending.strip():
            found.append(pending.strip())
        pending = ""
    return found


def section(title: str) -> str:
    text = DOC.read_text()
    body = text[text.index(title):]
    level = title.split(" ")[0]
    ends = [m.start() for m in re.finditer(rf"\n#{{2,{len(level)}}} ", body[1:])]
    return body[:ends[0] + 1] if ends else body


def commands(title: str) -> list[list[str]]:
    """The ``powerx-agent`` command lines of a section's bash blocks, without the program name."""
    return [_words(line) for block in _blocks(section(title)) for line in _lines(block)
            if line.startswith("powerx-agent ")]


def _words(command: str) -> list[str]:
    """A command's words after ``powerx-agent``, the guide's placeholders for people filled in."""
    return shlex.split(" ".join(command.replace("<you>", "tests").replace("<someone else>", "reviewer").split()))[1:]


def inline_commands(title: str | None = None) -> list[list[str]]:
    """``powerx-agent ...`` in the text of a section (of the whole guide without one): code spans, which
    may wrap over lines."""
    prose = re.sub(r"```.*?```", "", section(title) if title else DOC.read_text(), flags=re.S)
    return [_words(span) for span in re.findall(r"`(powerx-agent [^`]+)`", prose)]


def every_command_line() -> list[str]:
    return [line for block in _blocks(DOC.read_text()) for line in _lines(block)]


def run(rt, step: list[str], **substitutions: str) -> Any:
    step = [substitutions.get(word, word) for word in step]
    assert step[:2] == ["--stack", STACK], step
    out = CliRunner().invoke(app, ["--endpoint-url", f"http://127.0.0.1:{rt.port}", *step])
    assert out.exit_code == 0, f"{shlex.join(step)}\n{out.output}"
    return out


@pytest.fixture()
def stack(rt) -> str:
    """A CloudFormation stack in the embedded runtime whose outputs are its resources' names and URLs."""
    import os

    values = {**os.environ, **rt.environment, "POWERX_API_URL": rt.api.url, "POWERX_ARCHIVE_NAME": spec.ARCHIVE_NAME,
              "EVENT_BUS_NAME": spec.BUS_NAME}
    outputs = {key: {"Value": values[env]} for key, env in STACK_OUTPUTS.items() if values.get(env)}
    cfn = rt.client("cloudformation")
    if not any(s["StackName"] == STACK for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]):
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps({
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}))
    return STACK


def test_given_the_deploy_guide_when_its_commands_are_listed_then_each_runs_here_or_needs_an_account():
    run_here = {shlex.join(c) for c in commands("### 4.1 Publish") + commands("### 4.2 Load the tenants")
                + commands("### 4.3 Smoke-test") + commands("### 4.4 Roll back")
                + inline_commands("## 5. Send your own event")}
    for line in every_command_line():  # every bash block of the guide
        if line.startswith("powerx-agent "):
            assert shlex.join(_words(line)) in run_here, line
        else:
            assert any(line.startswith(prefix) for prefix in AWS_ONLY), f"not run and not explained: {line}"
    for words in inline_commands():  # and the commands in its text
        assert shlex.join(words) in run_here or shlex.join(words) in ELSEWHERE, words


def test_given_the_deploy_guide_when_the_library_is_published_then_lint_publish_approve_and_list_succeed(
        rt, stack, uid, tmp_path):
    steps = commands("### 4.1 Publish")
    assert [s[0] if s[0] != "--stack" else s[2] for s in steps] == ["strategy"] * 4
    lint, *with_stack = steps
    out = CliRunner().invoke(app, lint)
    assert out.exit_code == 0, out.output
    publish, approve, listed = with_stack
    run(rt, publish)
    # approve is for a version the YAML did not approve: publish such a draft first
    draft = (REPO / "strategies" / "report-on-job-completed.yaml").read_text()
    draft = re.sub(r"(?m)^id: .*$", f"id: doc-draft-{uid}", draft).replace("status: approved", "status: draft")
    # for a tenant nobody sends as: once approved, it never competes with the library the other tests use
    draft = re.sub(r"(?m)^tenants: .*$", 'tenants: ["doc-nobody"]', draft)
    (tmp_path / "draft.yaml").write_text(draft)
    run(rt, [*publish[:4], str(tmp_path / "draft.yaml"), *publish[5:]])
    version = re.search(r"(?m)^version: (\d+)$", draft)[1]
    run(rt, approve, ID=f"doc-draft-{uid}", N=version)
    assert "library revision" in run(rt, listed).output
    (published,) = get_deps().strategies.versions(f"doc-draft-{uid}")
    assert published["approval"] == "APPROVED", published


def test_given_the_deploy_guide_when_its_tenant_and_smoke_steps_run_then_each_succeeds(rt, stack):
    steps = commands("### 4.2 Load the tenants") + commands("### 4.3 Smoke-test")
    assert [s[2:4] for s in steps] == [["tenants", "apply"]] * 3 + [["tenants", "list"], ["tenants", "show"],
                                                                    ["tenants", "disable"], ["smoke", "--tenant"]]
    for step in steps:
        out = run(rt, step)
    assert "14/14 checks passed" in out.output


@pytest.fixture()
def second_release(rt, uid) -> Any:
    """A deploy on top of what is there (what the stack's deploy does); afterwards every alias is back."""
    lam = rt.client("lambda")
    before = {f.name: lam.get_alias(FunctionName=f.name, Name=spec.LIVE_ALIAS)["FunctionVersion"]
              for f in spec.FUNCTIONS}
    publish_release(lam, rt.deployment, f"r-doc-{uid}")
    # the rollback goes to the release published before this one (an earlier test may have published one
    # that is not live any more: that one, not the live aliases of before, is where rollback goes)
    releases = list_releases(get_deps())["releases"]  # newest first
    ids = [r["release"] for r in releases]
    previous = releases[ids.index(f"r-doc-{uid}") + 1]["versions"]
    yield f"r-doc-{uid}", {f.name: str(previous[f.key]) for f in spec.FUNCTIONS}
    for name, version in before.items():
        lam.update_alias(FunctionName=name, Name=spec.LIVE_ALIAS, FunctionVersion=version)


def test_given_the_deploy_guide_when_a_release_is_rolled_back_then_list_rollback_and_smoke_succeed(
        rt, stack, second_release):
    release, previous = second_release
    steps = commands("### 4.4 Roll back")
    assert [s[2:4] for s in steps] == [["release", "list"], ["release", "rollback"], ["release", "rollback"],
                                       ["smoke", "--tenant"]]
    run(rt, [*commands("### 4.2 Load the tenants")[2]])  # the smoke tenant (4.2)
    listed, dry_run, rollback, smoke = steps
    assert release in run(rt, listed).output
    assert f"would move the live aliases from release {release}" in run(rt, dry_run).output
    lam = rt.client("lambda")

    def live() -> dict[str, str]:
        return {f.name: lam.get_alias(FunctionName=f.name, Name=spec.LIVE_ALIAS)["FunctionVersion"]
                for f in spec.FUNCTIONS}

    assert live() != previous  # the dry run moved nothing
    assert release in run(rt, rollback).output
    assert live() == previous  # every function back on the release before
    assert "14/14 checks passed" in run(rt, smoke).output


def _first_event() -> list[dict[str, Any]]:
    (block,) = [b for b in _blocks(section("## 5. Send your own event")) if "put-events" in b]
    words = shlex.split(" ".join(_lines(block)))
    return json.loads(words[words.index("--entries") + 1])


def test_given_the_deploy_guide_when_its_first_event_is_put_then_workflow_list_and_replay_show_it(
        rt, stack, tmp_path, monkeypatch):
    entries = _first_event()
    assert entries[0]["EventBusName"] == spec.BUS_NAME
    put = rt.client("events").put_events(Entries=entries)
    assert put["FailedEntryCount"] == 0
    workflow_id = workflow_id_for("acme", json.loads(entries[0]["Detail"])["idempotency_key"])
    deadline = time.monotonic() + 60
    while get_deps().workflows.get(workflow_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    inline = inline_commands("## 5. Send your own event")
    by_command = {tuple(w for w in c[2:] if not w.startswith("-"))[:2]: c for c in inline}
    listing = by_command[("workflow", "list")]
    assert "workflow(s)" in run(rt, listing).output  # verbatim; its table wraps the ids: read them as JSON
    assert workflow_id in {w["workflow_id"] for w in json.loads(run(rt, [*listing, "--format", "json"]).output)}

    # the signed replay through the API, from a file of the guide's event (a duplicate by now: answered 200)
    monkeypatch.chdir(tmp_path)
    entry = entries[0]
    Path("events.jsonl").write_text(json.dumps({"Source": entry["Source"], "DetailType": entry["DetailType"],
                                                "Detail": entry["Detail"]}) + "\n")
    replay_api = next(c for c in inline if "--via" in c)
    assert "duplicate" in run(rt, replay_api).output.lower()
    # the archive replay, with a window around now
    replay_archive = next(c for c in inline if "--archive" in c)
    now = time.time()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))
    args = list(replay_archive)
    args[args.index("--start") + 1], args[args.index("--end") + 1] = start, end
    run(rt, args)
    assert get_deps().events.get("acme", json.loads(entry["Detail"])["idempotency_key"]) is not None
