"""flags set: the AppConfig writer (new hosted version + deployment) and the audited change."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from powerx_agent.adapters.flags import AppConfigFlagWriter, DynamoFlagWriter
from powerx_agent.audit.flags import FLAGS_CHAIN, set_flag, show
from powerx_agent.errors import AgentError


class FakeAppConfig:
    """In-memory AppConfig control plane (moto has no StartDeployment)."""

    def __init__(self) -> None:
        self.versions: list[bytes] = [json.dumps({"audit-streaming": {"default": True}}).encode()]
        self.deployments: list[dict] = []

    def list_applications(self):
        return {"Items": [{"Id": "app1", "Name": "powerx-agent"}]}

    def list_environments(self, ApplicationId):
        assert ApplicationId == "app1"
        return {"Items": [{"Id": "env1", "Name": "prod"}]}

    def list_configuration_profiles(self, ApplicationId):
        return {"Items": [{"Id": "prof1", "Name": "feature-flags"}]}

    def list_hosted_configuration_versions(self, ApplicationId, ConfigurationProfileId, MaxResults):
        return {"Items": [{"VersionNumber": len(self.versions)}]}

    def get_hosted_configuration_version(self, ApplicationId, ConfigurationProfileId, VersionNumber):
        return {"Content": io.BytesIO(self.versions[VersionNumber - 1])}

    def create_hosted_configuration_version(self, ApplicationId, ConfigurationProfileId, Description, Content,
                                            ContentType):
        assert ContentType == "application/json"
        self.versions.append(Content)
        return {"VersionNumber": len(self.versions)}

    def start_deployment(self, **kwargs):
        self.deployments.append(kwargs)
        return {"DeploymentNumber": len(self.deployments)}


class FakeAudit:
    def __init__(self) -> None:
        self.entries = []

    def append(self, entry):
        self.entries.append(entry)
        return {"seq": len(self.entries)}


def fake_deps():
    invalidated = []
    return SimpleNamespace(audit=FakeAudit(), flags=SimpleNamespace(invalidate=lambda: invalidated.append(1)),
                           invalidated=invalidated)


def test_given_appconfig_store_when_flag_set_off_then_new_version_deployed_and_change_audited():
    client = FakeAppConfig()
    store = AppConfigFlagWriter(client, "powerx-agent", "prod", "feature-flags")
    deps = fake_deps()
    change = set_flag(deps, "audit-streaming", False, "alice", store=store)
    assert json.loads(client.versions[-1])["audit-streaming"] == {"default": False}
    assert client.deployments[0]["ConfigurationVersion"] == "2"
    assert client.deployments[0]["DeploymentStrategyId"] == "AppConfig.AllAtOnce"
    (entry,) = deps.audit.entries
    assert (entry.kind, entry.chain, entry.status) == ("flag.changed", FLAGS_CHAIN, "OFF")
    assert entry.data["by"] == "alice" and entry.data["from"] == "on" and entry.data["version"] == 2
    assert change.to_dict()["audit"] == "OPS#flags#1" and deps.invalidated == [1]


def test_given_appconfig_without_that_profile_when_ids_resolved_then_error_names_it():
    store = AppConfigFlagWriter(FakeAppConfig(), "powerx-agent", "prod", "missing-profile")
    with pytest.raises(Exception, match="configuration profile 'missing-profile' not found"):
        store.ids()


def test_given_dynamo_store_when_shown_then_unset_flags_default_on():
    class Strategies:
        def flags(self):
            return {"agent-orchestrator": {"default": False}}

    rows = {row["name"]: row["on"] for row in show(None, store=DynamoFlagWriter(Strategies()))}
    assert rows == {"agent-orchestrator": False, "agent-strategy-library": True, "audit-streaming": True}


def test_given_unknown_flag_when_set_then_refused_before_anything_is_written():
    deps = fake_deps()
    with pytest.raises(AgentError, match="unknown feature flag"):
        set_flag(deps, "no-such-flag", True, "bob", store=DynamoFlagWriter(None))
    assert deps.audit.entries == []
