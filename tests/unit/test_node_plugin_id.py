"""pluginId goes into the plugin runtime's URL path: only plain ids pass, nothing is sent otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from powerx_agent.adapters.downstream import Downstream, validate_plugin_id
from powerx_agent.errors import PluginRejected


class RecordingSecrets:
    def __init__(self) -> None:
        self.reads: list[str] = []

    def get_json(self, secret_id: str) -> dict[str, str]:
        self.reads.append(secret_id)
        return {"plugin_runtime_token": "t"}


def _downstream() -> tuple[Downstream, RecordingSecrets]:
    secrets = RecordingSecrets()
    settings = SimpleNamespace(downstream_secret="s", plugin_runtime_url="http://127.0.0.1:9", http_connect_timeout=0.1,
                               http_read_timeout=0.1)
    return Downstream(SimpleNamespace(settings=settings, secrets=secrets)), secrets


@pytest.mark.parametrize("plugin_id", ["../x", "..", "a/../b", "a/b", "%2e%2e", "%2E%2E%2Fetc", "Report-Renderer",
                                       "REPORT", "a" * 65, "", "-x", ".hidden", "a..b", "x\n", "a b", "a?b=1",
                                       "a#b", "a\\b"])
def test_given_tricky_plugin_id_when_executed_then_rejected_before_any_request(plugin_id):
    downstream, secrets = _downstream()
    with pytest.raises(PluginRejected) as caught:
        downstream.execute_plugin(plugin_id, {}, {})
    assert caught.value.code == "plugin.invalid_id" and not caught.value.retryable
    assert secrets.reads == []  # no credentials read, no request built


@pytest.mark.parametrize("plugin_id", ["report-renderer", "s3-archiver", "a", "v1.2_x", "a" * 64])
def test_given_plain_plugin_id_when_validated_then_accepted_unchanged(plugin_id):
    assert validate_plugin_id(plugin_id) == plugin_id


def test_given_non_string_plugin_id_when_validated_then_rejected():
    with pytest.raises(PluginRejected):
        validate_plugin_id(None)
