"""What every command of ``powerx-agent`` promises, checked over the whole command tree (a command added
later is covered as soon as it is registered): ``--format json`` and a JMESPath ``--query``; one actor flag
``--by`` (the old spellings accepted, never shown); output that pipes well (nothing wrapped or cut when
stdout is not a terminal, user text never read as markup); shell completion."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from powerx_agent.cli._common import Output, actor, rfc3339, text_lines, with_timestamps
from powerx_agent.cli.main import app
from tests.conftest import REPO

OLD_ACTOR_SPELLINGS = ("--actor", "--author", "--approver")
AUDITED = {"strategy publish", "strategy approve", "strategy rollback", "review approve", "review reject",
           "workflow retry", "workflow fill", "workflow stop", "repair", "flags set", "release rollback", "replay"}


def commands() -> dict[str, typer.core.TyperCommand]:
    found = {}

    def walk(command, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or getattr(command, "invoke_without_command", False):
            if path:
                found[" ".join(path)] = command
        for name, sub in (subcommands or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def options(command) -> dict[str, object]:
    return {opt: param for param in command.params for opt in getattr(param, "opts", ()) if opt.startswith("--")}


ALL = sorted(commands())


def test_given_the_command_tree_then_it_is_walked_whole():
    assert {"workflow list", "strategy approve", "audit show", "replay", "version", "completion"} <= set(ALL)
    assert len(ALL) >= 30


@pytest.mark.parametrize("name", ALL)
def test_given_any_command_then_it_takes_format_json_and_a_jmespath_query(name):
    found = options(commands()[name])
    assert "--format" in found and "--query" in found, f"{name}: {sorted(found)}"
    help_text = found["--format"].help or ""
    assert "json" in help_text, f"{name} --format: {help_text}"


@pytest.mark.parametrize("name", ALL)
def test_given_any_command_then_the_actor_is_by_and_the_old_spellings_are_hidden_aliases(name):
    found = options(commands()[name])
    for old in OLD_ACTOR_SPELLINGS:
        if old in found:
            assert found[old].hidden, f"{name} shows {old}"
            assert "--by" in found, name
    if name in AUDITED:
        assert "--by" in found and all(old in found for old in OLD_ACTOR_SPELLINGS), name
    shown = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"}).output
    assert not any(f"{old} " in shown for old in OLD_ACTOR_SPELLINGS), shown


def test_given_by_and_an_old_spelling_when_resolved_then_one_actor_or_a_usage_error():
    assert actor("ann", None) == "ann" and actor(None, "ann") == "ann" and actor("ann", "ann") == "ann"
    with pytest.raises(typer.BadParameter):
        actor("ann", "bob")
    with pytest.raises(typer.BadParameter):
        actor("  ", None)
    os.environ["POWERX_ACTOR"] = "from-env"
    try:
        assert actor(None, None) == "from-env"
    finally:
        del os.environ["POWERX_ACTOR"]


def test_given_epochs_in_an_output_when_converted_then_rfc3339_everywhere_and_other_numbers_untouched():
    data = {"created_at": 1764324000.5, "attempts": 3, "nodes": [{"updated_at": 1764324001, "duration": 12.5}],
            "first_seen": 1764324000, "reason": "x"}
    out = with_timestamps(data)
    assert out["created_at"] == "2025-11-28T10:00:00.500Z" and out["nodes"][0]["updated_at"].endswith("01.000Z")
    assert out["attempts"] == 3 and out["nodes"][0]["duration"] == 12.5 and out["first_seen"].endswith("Z")
    assert rfc3339("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z" and rfc3339(True) is True


def test_given_a_query_when_printed_as_text_then_the_aws_cli_text_form():
    assert text_lines(["a", "b"]) == ["a\tb"]
    assert text_lines([{"id": "x", "n": 1}, {"id": "y", "n": 2}]) == ["x\t1", "y\t2"]
    assert text_lines("wf-1") == ["wf-1"] and text_lines(None) == ["None"]
    with pytest.raises(typer.BadParameter, match="JMESPath"):
        Output("json", "[?")
    with pytest.raises(typer.BadParameter, match="--format|text or json"):
        Output("yaml")


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "40", **(env or {})})


def test_given_json_and_a_query_when_an_offline_command_runs_then_the_result_is_the_selection():
    listed = _run("strategy", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    ids = [row["id"] for row in json.loads(listed.stdout)]
    queried = _run("strategy", "list", "--query", "[].id", "--format", "json")
    assert json.loads(queried.stdout) == ids
    as_text = _run("strategy", "list", "--query", "[?weight > `60`].id")
    assert as_text.stdout.strip() == "report-on-job-completed"
    lines = _run("strategy", "list", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids


@pytest.fixture()
def long_library(tmp_path: Path) -> Path:
    """A strategy with a 60-character id, and a second file whose problem is reported on a long line."""
    text = (REPO / "strategies" / "ticket-on-job-failed.yaml").read_text()
    long_id = "ticket-on-job-failed-" + "x" * 39
    (tmp_path / "long.yaml").write_text(text.replace("id: ticket-on-job-failed", f"id: {long_id}"))
    (tmp_path / "bad.yaml").write_text(text.replace("id: ticket-on-job-failed", 'id: "[not-an-id]"')
                                       .replace("plugin.job.failed", "plugin.job.failed.with.a.very.long.event.type"))
    return tmp_path


def test_given_stdout_is_not_a_terminal_when_a_table_prints_then_ids_are_whole_and_nothing_wraps(long_library):
    good = long_library / "good"
    good.mkdir()
    (long_library / "long.yaml").rename(good / "long.yaml")
    listed = _run("strategy", "list", "--strategies", str(good))
    assert listed.exit_code == 0, listed.output
    assert "ticket-on-job-failed-" + "x" * 39 in listed.stdout and "…" not in listed.stdout
    assert len(listed.stdout.splitlines()) == 3  # header, rule, one row: not folded over lines


def test_given_a_narrow_console_when_lint_reports_then_each_finding_is_one_whole_line_with_brackets_kept(
        long_library):
    linted = _run("strategy", "lint", str(long_library), "--format", "json")
    findings = json.loads(linted.stdout)
    assert findings, linted.output
    text = _run("strategy", "lint", str(long_library)).stdout.splitlines()
    for finding in findings:
        line = f"{finding['source']}:{finding['line']}:{finding['col']}: {finding['code']} {finding['message']}"
        assert line in text, (line, text)
    assert any("(got '[not-an-id]')" in line for line in text), text


def test_given_brackets_in_event_values_when_strategy_test_prints_variables_then_they_are_kept(tmp_path):
    event = json.loads((REPO / "tests" / "events" / "c1-plugin-job-completed.json").read_text())
    event["detail"]["payload"]["job"]["id"] = "[acme] [bold]42[/bold]"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    shown = _run("strategy", "test", "--event", str(path))
    assert shown.exit_code == 0, shown.output
    assert '"job_id": "[acme] [bold]42[/bold]"' in shown.stdout
    assert '"report_name": "daily-[acme] [bold]42[/bold]"' in shown.stdout


def test_given_completion_when_the_script_is_asked_then_it_names_the_program_and_completes_commands():
    script = _run("completion", "bash")
    assert script.exit_code == 0 and "_POWERX_AGENT_COMPLETE=complete_bash" in script.stdout
    for shell in ("zsh", "fish"):
        assert "powerx-agent" in _run("completion", shell).stdout
    assert _run("completion", "tcsh").exit_code == 2
    env = {**os.environ, "_POWERX_AGENT_COMPLETE": "complete_bash", "COMP_WORDS": "powerx-agent work",
           "COMP_CWORD": "1"}
    done = subprocess.run([str(REPO / ".venv" / "bin" / "powerx-agent")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["workflow"], done.stdout + done.stderr
    env.update(COMP_WORDS="powerx-agent flags set agent-", COMP_CWORD="3")
    done = subprocess.run([str(REPO / ".venv" / "bin" / "powerx-agent")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert set(done.stdout.split()) == {"agent-orchestrator", "agent-strategy-library"}, done.stdout
