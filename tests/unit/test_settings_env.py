"""One schema of environment variables: ``powerx_agent.settings.Env`` names each variable once;
``load_settings`` reads them, infra/ sets them on the functions, local/ on the embedded runtime and
the CLI from a stack's outputs, all through ``Env`` members, never through a string of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from powerx_agent.cli.connect import STACK_OUTPUTS
from powerx_agent.settings import Env, load_settings

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / "functions" / "powerx_agent" / "settings.py"
# set by a deploy, or read by the CLI or the embedded runtime only: not part of Settings
NOT_IN_SETTINGS = {Env.AGENT_FUNCTION, Env.POWERX_RELEASE, Env.POWERX_API_URL, Env.POWERX_ARCHIVE_NAME,
                   Env.POWERX_ACTOR, Env.POWERX_REPLAY_CALLER, Env.POWERX_LOCAL_MAX_EXECUTIONS}


def _sources() -> list[Path]:
    roots = [REPO / "functions" / "powerx_agent", REPO / "infra", REPO / "bench"]
    return sorted(p for root in roots for p in root.rglob("*.py") if p != SETTINGS)


def test_given_the_code_when_scanned_then_no_string_literal_names_an_environment_variable_of_env():
    names = {member.value for member in Env}
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r} (use Env.{node.value})")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("member", sorted(set(Env) - NOT_IN_SETTINGS))
def test_given_a_variable_of_env_when_set_then_load_settings_reads_it(monkeypatch, member):
    for other in Env:
        monkeypatch.delenv(other, raising=False)
    base = load_settings()
    changed = []
    for value in ("1", "0"):
        monkeypatch.setenv(member, value)
        changed.append(load_settings() != base)
    assert any(changed), f"{member} is in Env but load_settings does not read it"


def test_given_the_stack_outputs_when_mapped_then_each_names_a_variable_of_env():
    assert all(isinstance(var, Env) for var in STACK_OUTPUTS.values())
    assert len(set(STACK_OUTPUTS.values())) == len(STACK_OUTPUTS)


def test_given_load_settings_when_read_then_every_variable_is_named_through_env():
    """A new setting reads ``_env(Env.NEW_NAME)``: the template test then knows its name too."""
    readers = {"_env", "_env_float", "_env_bool"}
    loose = []
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in readers and node.args:
            name = node.args[0]
            if not (isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name) and name.value.id == "Env"):
                loose.append(f"settings.py:{node.lineno}: {ast.unparse(name)}")
    assert not loose, "\n".join(loose)
