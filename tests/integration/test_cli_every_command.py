"""Every command of ``powerx-agent`` answers a missing or unreachable engine with one clear line and
exit 1 or 2, never a traceback: an endpoint nobody listens on, a stack that does not exist, no AWS
credentials. The commands are enumerated from the typer app, so a new command is covered as soon as
it is registered (with placeholder arguments, or the realistic ones in ``ARGS``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from tests.conftest import REPO

UNREACHABLE = "http://127.0.0.1:9"
# they start an embedded runtime of their own (cost measures its profile on one): no target to miss
OWN_RUNTIME = {"local demo", "local serve", "local load", "cost"}
# it serves until Ctrl-C once its target answers: checked here with a target that cannot be used only
SERVES = {"console"}
OFFLINE = {"version", "completion", "strategy lint", "strategy test", "strategy graph", "strategy simulate",
           "strategy list"}
TRACE_MARKERS = ("Traceback", 'File "')


def commands() -> list[tuple[str, typer.core.TyperCommand]]:
    found = []

    def walk(command, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or getattr(command, "invoke_without_command", False):
            if path:
                found.append((" ".join(path), command))
        for name, sub in (subcommands or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def events_file(tmp: Path) -> Path:
    path = tmp / "events.jsonl"
    event = json.loads((REPO / "tests" / "events" / "c1-plugin-job-completed.json").read_text())
    path.write_text(json.dumps(event) + "\n")
    return path


def args_for(name: str, tmp: Path) -> list[str]:
    """Arguments that pass each command's own checks, so it gets as far as the engine."""
    events = str(events_file(tmp))
    known = {
        "strategy test": ["--event", str(REPO / "tests" / "events" / "c1-plugin-job-completed.json")],
        "strategy graph": ["report-on-job-completed"],
        "strategy simulate": ["--events", events],
        "strategy publish": ["--author", "tests"],
        "strategy approve": ["report-on-job-completed", "--version", "1", "--approver", "a", "--reason", "r"],
        "strategy rollback": ["report-on-job-completed"],
        "strategy diff": ["report-on-job-completed", "--from", "1", "--to", "2"],
        "review approve": [f"rv-{'0' * 20}", "--by", "a"],
        "review reject": [f"rv-{'0' * 20}", "--by", "a", "--reason", "r"],
        "workflow show": ["wf-x"], "workflow retry": ["wf-x"], "workflow view": ["wf-x", "--out", str(tmp / "v.html")],
        "workflow fill": ["wf-x", "n1", "--output", "{}", "--by", "a"],
        "workflow stop": ["--tenant", "acme", "--by", "a"],
        "replay": ["--file", events],
        "release rollback": ["--reason", "tests"],
        "flags set": ["audit-streaming", "on", "--by", "tests"],
        "tenants apply": [str(REPO / "config" / "tenants.yaml"), "--by", "tests"],
        "tenants show": ["acme"], "tenants disable": ["acme", "--by", "tests"],
        "completion": ["bash"], "audit show": ["WF#wf-x"], "events show": ["evt-x"],
        "keys rotate": ["callback", "--by", "tests"],
    }
    if name in known:
        return known[name]
    placeholder = []  # a command added later: every required argument and option gets a value
    for param in dict(commands())[name].params:
        if param.required:
            placeholder += ["x"] if not param.opts[0].startswith("-") else [param.opts[0], "x"]
    return placeholder


@contextmanager
def isolated_environment(**env: str | None) -> Iterator[None]:
    """Commands write their target into os.environ; the embedded runtime of this session must not see it."""
    from powerx_agent.adapters.aws import reset_clients

    saved = dict(os.environ)
    reset_clients()  # a fresh boto3 session: credentials are looked up again
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_clients()


def run(root_options: list[str], name: str, tmp: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*root_options, *name.split(), *args_for(name, tmp)])
    output = result.output  # stdout and stderr, as a terminal shows them
    if result.exception and not isinstance(result.exception, SystemExit):
        return -1, f"{output}\n{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, output


def the_one_line(name: str, code: int, output: str, expected_code: int) -> str | None:
    """A command that needs the engine answers with exactly one line, ``error: ...``, and the expected
    exit code; one that needs none (``OFFLINE``) gives its own result. Never a traceback."""
    assert not any(marker in output for marker in TRACE_MARKERS), output
    if name in OFFLINE:
        assert code in (0, 1), output  # needs no engine: its own result
        return None
    assert code == expected_code, output
    (line,) = [line for line in output.splitlines() if line.strip()]
    assert line.startswith("error: "), output
    return line


SANDBOX = sorted(name for name, _ in commands() if name.startswith("local sandbox "))  # the local sandbox's faults
CASES = [name for name, _ in commands() if name not in OWN_RUNTIME | SERVES | set(SANDBOX)]
SANDBOX_ARGS = {"succeed": ["x"], "fail": ["x", "--times", "1"], "flaky": ["x", "--rate", "0.5"], "slow": ["x", "--seconds", "1"],
                "async": ["x"], "down": ["ops"], "up": ["ops"]}


def test_given_the_app_then_every_command_is_either_checked_here_or_starts_its_own_runtime():
    assert set(dict(commands())) == set(CASES) | OWN_RUNTIME | SERVES | set(SANDBOX)
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", SANDBOX)
def test_given_no_sandbox_listening_when_a_sandbox_command_runs_then_one_error_line_and_exit_1(name):
    argv = ["local", "sandbox", "--sandbox-url", UNREACHABLE, name.split()[-1], *SANDBOX_ARGS.get(name.split()[-1], [])]
    result = CliRunner().invoke(app, argv)
    line = the_one_line(name, result.exit_code, result.output, expected_code=1)
    assert line is not None and f"no sandbox answers at {UNREACHABLE}" in line, result.output


def test_given_a_stack_that_does_not_exist_when_the_console_starts_then_one_error_line_and_exit_2(rt):
    with isolated_environment(AWS_MAX_ATTEMPTS="1"):
        result = CliRunner().invoke(app, ["--endpoint-url", f"http://127.0.0.1:{rt.port}", "--stack", "NoSuchStack",
                                          "console", "--port", "0"])
    line = the_one_line("console", result.exit_code, result.output, expected_code=2)
    assert line is not None and "cannot read stack 'NoSuchStack'" in line, result.output


@pytest.mark.parametrize("name", CASES)
def test_given_an_endpoint_nobody_listens_on_when_a_command_runs_then_one_error_line_and_exit_1(name, tmp_path):
    with isolated_environment(AWS_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL=None, MATCH_QUEUE_URL=None):
        code, output = run(["--endpoint-url", UNREACHABLE], name, tmp_path)

    line = the_one_line(name, code, output, expected_code=1)
    assert line is None or "cannot reach http://127.0.0.1:9" in line, output


@pytest.mark.parametrize("name", CASES)
def test_given_a_stack_that_does_not_exist_when_a_command_runs_then_one_error_line_and_exit_2(name, tmp_path, rt):
    with isolated_environment(AWS_MAX_ATTEMPTS="1"):
        code, output = run(["--endpoint-url", f"http://127.0.0.1:{rt.port}", "--stack", "NoSuchStack"], name, tmp_path)

    line = the_one_line(name, code, output, expected_code=2)
    assert line is None or ("cannot read stack 'NoSuchStack'" in line and "does not exist" in line), output


@pytest.mark.parametrize("name", CASES)
def test_given_no_aws_credentials_when_a_command_runs_then_one_error_line_and_exit_2(name, tmp_path):
    unset = {k: None for k in os.environ if k.startswith("AWS_") and k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    with isolated_environment(**unset, AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                              AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1", AWS_REGION="eu-west-1",
                              MATCH_QUEUE_URL=None, FLAGS_STORE=None):
        code, output = run([], name, tmp_path)

    line = the_one_line(name, code, output, expected_code=2)
    # no credentials, or (flags: nothing says which AppConfig profile) the missing stack itself
    assert line is None or line.startswith(("error: no AWS credentials", "error: config.missing")), output


@pytest.mark.parametrize("name", CASES + sorted(OWN_RUNTIME | SERVES) + SANDBOX)
def test_given_bad_arguments_when_a_command_runs_then_one_error_line_naming_the_command_and_exit_2(name, tmp_path):
    """An unknown option, and (for a command that has one) a missing required argument: one line that
    names the command and where its help is, exit 2, before anything is reached."""
    attempts = [[*name.split(), "--no-such-option"]]
    if any(param.required for param in dict(commands())[name].params):
        attempts.append(name.split())
    for argv in attempts:
        with isolated_environment(AWS_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL=None):
            result = CliRunner().invoke(app, ["--endpoint-url", UNREACHABLE, *argv])
        output = result.output
        assert result.exit_code == 2, output
        assert not any(marker in output for marker in TRACE_MARKERS), output
        (line,) = [line for line in output.splitlines() if line.strip()]
        assert line.startswith(f"error: powerx-agent {name}: ") and line.endswith(f"(see powerx-agent {name} --help)")
        assert "No such option: --no-such-option" in line or "Missing" in line, line


def test_given_no_command_when_a_group_runs_then_its_help_is_shown():
    result = CliRunner().invoke(app, ["tenants"])
    assert result.exit_code == 2 and "apply" in result.output and "error:" not in result.output
