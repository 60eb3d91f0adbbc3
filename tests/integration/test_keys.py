"""Keys per purpose on the embedded runtime: replay callers scoped to tenants, rotation without
downtime (old and new key both verify), retirement, the callback key's rotation (URLs already handed
out keep working), and an audit trail that never holds a key."""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from pathlib import Path

import requests
from helpers import detail, signed_callback_url
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.signing import signed_headers

cli = CliRunner()


def _replay(rt, key: str, caller: str, tenant: str, uid: str) -> requests.Response:
    body = {"source": "powerx.replay", "detail-type": "plugin.job.completed", "detail": detail(uid, tenant=tenant)}
    data = json.dumps(body).encode()
    return requests.post(f"{rt.api.url}/internal/agent/events", data=data, timeout=30,
                         headers=signed_headers(key, data, caller=caller))


def _key(path) -> str:
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    return json.loads(path.read_text())["key"]


def test_given_a_new_caller_when_scoped_rotated_and_retired_then_each_step_holds_without_downtime(rt, uid, tmp_path):
    caller = f"job-{uid}"
    added = cli.invoke(app, ["keys", "add-caller", caller, "--tenant", "acme", "--out", str(tmp_path / "k1.json"),
                             "--by", "tests"])
    assert added.exit_code == 0, added.output
    first = _key(tmp_path / "k1.json")
    assert first not in added.output
    time.sleep(5.1)  # the verifiers re-read the secret at most every 5 s
    assert _replay(rt, first, caller, "acme", f"{uid}a").status_code == 202
    assert _replay(rt, first, caller, "globex", f"{uid}b").status_code == 403  # scoped to acme
    rotated = cli.invoke(app, ["keys", "rotate", "replay", "--caller", caller, "--out", str(tmp_path / "k2.json")])
    assert rotated.exit_code == 0, rotated.output
    second = _key(tmp_path / "k2.json")
    assert _replay(rt, first, caller, "acme", f"{uid}c").status_code == 202  # the previous key still verifies
    time.sleep(5.1)
    assert _replay(rt, second, caller, "acme", f"{uid}d").status_code == 202  # the new key is picked up
    retired = cli.invoke(app, ["keys", "retire", caller])
    assert retired.exit_code == 0, retired.output
    listing = json.loads(cli.invoke(app, ["keys", "list", "--format", "json"]).output)
    mine = next(c for c in listing["replay_callers"] if c["caller"] == caller)
    assert mine["tenants"] == ["acme"] and mine["slots"] == [mine["active"]]
    assert first not in json.dumps(listing) and second not in json.dumps(listing)
    records = get_deps().audit.chain("OPS#keys")
    assert {"keys.caller_added", "keys.rotated", "keys.retired"} <= {r["kind"] for r in records}
    assert first not in json.dumps(records) and second not in json.dumps(records)
    again = cli.invoke(app, ["keys", "add-caller", caller, "--tenant", "acme", "--out", str(tmp_path / "k3.json")])
    assert again.exit_code == 1 and "keys.caller_exists" in again.output
    assert cli.invoke(app, ["keys", "remove-caller", caller]).exit_code == 0
    assert rt.wait_idle(60)


def test_given_callback_key_rotated_when_urls_signed_before_and_after_are_used_then_both_verify(rt):
    sm = rt.client("secretsmanager")
    original = sm.get_secret_value(SecretId="powerx/agent/callback-keys")["SecretString"]
    try:
        _rotate_and_check(rt, sm)
    finally:  # other tests sign with the runtime's first callback key: restore it, forget the rotated one
        sm.put_secret_value(SecretId="powerx/agent/callback-keys", SecretString=original)
        get_deps().secrets.refresh("powerx/agent/callback-keys", older_than=-1)


def _rotate_and_check(rt, sm) -> None:
    before = signed_callback_url(rt, "cb-" + "e" * 24)
    rotated = cli.invoke(app, ["keys", "rotate", "callback", "--by", "tests"])
    assert rotated.exit_code == 0, rotated.output
    value = json.loads(sm.get_secret_value(SecretId="powerx/agent/callback-keys")["SecretString"])
    after = signed_callback_url(rt, "cb-" + "e" * 24, key=value[value["active"]])
    time.sleep(5.1)
    for url in (before, after):  # both reach the callback lookup: the URL itself is accepted
        answer = requests.post(url, json={"outcome": "succeeded"}, timeout=30)
        assert answer.status_code == 404 and answer.json()["code"] == "callback.unknown", answer.text
    bad = cli.invoke(app, ["keys", "rotate", "callback", "--caller", "operator"])
    assert bad.exit_code == 2


def test_given_the_runbook_keys_section_when_each_command_is_run_then_each_succeeds(rt, tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    section = text.split("## Keys: replay callers and rotation", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 7 and all(c.startswith("powerx-agent keys ") for c in commands)
    monkeypatch.chdir(tmp_path)  # the --out files land here
    sm = rt.client("secretsmanager")
    original = sm.get_secret_value(SecretId="powerx/agent/callback-keys")["SecretString"]
    try:
        for command in commands:
            args = shlex.split(command.replace("\"$ME\"", "runbook-test"))[1:]
            result = cli.invoke(app, args)
            assert result.exit_code == 0, (command, result.output)
    finally:
        sm.put_secret_value(SecretId="powerx/agent/callback-keys", SecretString=original)
        get_deps().secrets.refresh("powerx/agent/callback-keys", older_than=-1)
    assert (tmp_path / "acme-batch.key.json").exists() and (tmp_path / "acme-batch.key2.json").exists()
