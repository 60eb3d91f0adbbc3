"""Feature flags on AWS, proven against AppConfig's documented behaviour (moto serves none of it).

The flag document comes from the synthesized template, is served by a loopback AppConfig
(``tests/appconfig_service.py``) the way ``GetLatestConfiguration`` returns that profile type, and is
read through the production path: Powertools ``AppConfigStore`` + ``FeatureFlags`` behind our
``Flags``. ``flags set`` writes with ``CreateHostedConfigurationVersion`` + ``StartDeployment`` and
``flags show`` reads back through that same path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from powerx_agent import spec
from powerx_agent.adapters.flags import (
    AppConfigFlagWriter,
    Flags,
    FlagStoreError,
    ResilientStore,
    appconfig_store,
)
from powerx_agent.ops.flags import FLAGS_CHAIN, set_flag, show, status
from powerx_agent.settings import load_settings
from tests.appconfig_service import FEATURE_FLAGS_TYPE, AppConfigService, retrieved_form

EXAMPLES = Path(__file__).resolve().parents[1] / "aws_examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def logical(synth, cfn_type: str) -> str:
    (found,) = synth.of_type(cfn_type)
    return found


@pytest.fixture()
def appconfig(synth) -> Iterator[tuple[AppConfigService, dict[str, str]]]:
    service = AppConfigService()
    ids = service.load_template(synth.resources)
    try:
        yield service, ids
    finally:
        service.close()


def settings_for(synth, ids: dict[str, str]):
    return replace(load_settings(), flags_store="appconfig",
                   appconfig_application=ids[logical(synth, "AWS::AppConfig::Application")],
                   appconfig_environment=ids[logical(synth, "AWS::AppConfig::Environment")],
                   appconfig_profile=ids[logical(synth, "AWS::AppConfig::ConfigurationProfile")],
                   appconfig_deployment_strategy=ids[logical(synth, "AWS::AppConfig::DeploymentStrategy")])


class Audit:
    def __init__(self) -> None:
        self.entries: list = []

    def append(self, entry):
        self.entries.append(entry)
        return {"seq": len(self.entries)}


def operator(service: AppConfigService, settings) -> tuple[SimpleNamespace, AppConfigFlagWriter]:
    """What `powerx-agent --stack NAME flags ...` builds: the writer over the stack's ids."""
    clients = {"appconfig": service.client("appconfig"), "appconfigdata": service.client("appconfigdata")}
    deps = SimpleNamespace(settings=settings, client=clients.__getitem__, audit=Audit(),
                           flags=SimpleNamespace(invalidate=lambda: None))
    return deps, AppConfigFlagWriter.from_deps(deps)


# -- the deployed document, read as the functions read it -----------------------------------------


def test_given_the_synthesized_profile_then_it_is_freeform_json_in_powertools_schema(synth):
    (profile,) = synth.of_type("AWS::AppConfig::ConfigurationProfile").values()
    (version,) = synth.of_type("AWS::AppConfig::HostedConfigurationVersion").values()
    assert profile["Properties"]["Type"] == "AWS.Freeform"
    assert version["Properties"]["ContentType"] == spec.FLAGS_CONTENT_TYPE
    assert json.loads(version["Properties"]["Content"]) == spec.feature_flags_document()


def test_given_the_template_served_as_appconfig_does_when_every_flag_is_read_then_all_are_on_and_nothing_failed(
        synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    # max_age=0: every evaluation polls GetLatestConfiguration again, so the later polls answer an empty
    # body ("the client already has the latest version") and Powertools must keep serving the first one
    flags = Flags(ResilientStore(lambda: appconfig_store(service.client("appconfigdata"), settings, max_age=0)))

    for _ in range(2):
        assert {name: flags.enabled(name, {"tenant_id": "acme"}) for name in spec.FEATURE_FLAGS} == {
            name: True for name in spec.FEATURE_FLAGS}

    assert flags.take_store_errors() == 0
    assert service.calls.count("StartConfigurationSession") == 1
    assert service.served[0] > 0 and 0 in service.served[1:]


def test_given_a_flag_turned_off_in_appconfig_when_functions_poll_again_then_they_read_it_off(synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    flags = Flags(ResilientStore(lambda: appconfig_store(service.client("appconfigdata"), settings, max_age=0)))
    assert flags.enabled("audit-streaming") is True
    deps, writer = operator(service, settings)

    set_flag(deps, "audit-streaming", False, "alice", store=writer)

    assert flags.enabled("audit-streaming") is False
    assert flags.enabled("agent-orchestrator") is True


def test_given_the_same_flags_in_a_feature_flags_type_profile_then_powertools_cannot_read_them_and_defaults_serve(
        synth):
    """Why the profile is Freeform: AppConfig serves an AWS.AppConfig.FeatureFlags profile in its
    retrieved form, which Powertools' schema refuses. Our store survives it, counts it, serves the defaults."""
    resources = copy.deepcopy(synth.resources)
    profile_id = logical(synth, "AWS::AppConfig::ConfigurationProfile")
    version_id = logical(synth, "AWS::AppConfig::HostedConfigurationVersion")
    resources[profile_id]["Properties"]["Type"] = FEATURE_FLAGS_TYPE
    resources[version_id]["Properties"]["Content"] = json.dumps({
        "version": "1", "flags": {n: {"name": n} for n in spec.FEATURE_FLAGS},
        "values": {n: {"enabled": n != "audit-streaming"} for n in spec.FEATURE_FLAGS}})
    service = AppConfigService()
    try:
        ids = service.load_template(resources)
        settings = settings_for(synth, ids)
        flags = Flags(ResilientStore(lambda: appconfig_store(service.client("appconfigdata"), settings, max_age=0)))

        assert flags.enabled("audit-streaming") is True  # the stored "off" cannot be read: the default serves
        assert flags.take_store_errors() == 1
        with pytest.raises(FlagStoreError, match="Powertools' feature-flag schema"):
            operator(service, settings)[1].deployed()
    finally:
        service.close()


def test_given_appconfig_unavailable_when_flags_are_read_then_the_last_known_flags_serve_and_the_failure_counts(
        synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    deps, writer = operator(service, settings)
    set_flag(deps, "agent-orchestrator", False, "alice", store=writer)
    now = [0.0]
    flags = Flags(ResilientStore(lambda: appconfig_store(service.client("appconfigdata"), settings, max_age=0),
                                 retry_after=30, clock=lambda: now[0]))
    assert flags.enabled("agent-orchestrator") is False

    service.available = False
    assert flags.enabled("agent-orchestrator") is False  # the last known value, not the default
    calls = len(service.calls)
    assert flags.enabled("agent-strategy-library") is True
    assert len(service.calls) == calls  # within retry_after the store is not asked again
    assert flags.take_store_errors() == 1

    service.available = True
    now[0] = 31.0
    assert flags.enabled("agent-orchestrator") is False
    assert service.calls[-2:] == ["StartConfigurationSession", "GetLatestConfiguration"]  # a fresh session
    assert flags.take_store_errors() == 0


# -- flags set / show on AWS ---------------------------------------------------------------------


def test_given_the_stack_when_a_flag_is_set_then_a_json_version_is_deployed_with_the_stack_strategy_and_audited(
        synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    deps, writer = operator(service, settings)

    change = set_flag(deps, "audit-streaming", False, "alice", store=writer)

    profile = service.apps[settings.appconfig_application].profiles[settings.appconfig_profile]
    assert [v.number for v in profile.versions] == [1, 2]
    assert profile.versions[-1].content_type == "application/json"
    assert json.loads(profile.versions[-1].content)["audit-streaming"] == {"default": False}
    deployments = service.apps[settings.appconfig_application].deployments[settings.appconfig_environment]
    assert deployments[-1]["DeploymentStrategyId"] == settings.appconfig_deployment_strategy
    assert deployments[-1]["ConfigurationVersion"] == "2"
    (entry,) = deps.audit.entries
    assert (entry.kind, entry.chain, entry.status) == ("flag.changed", FLAGS_CHAIN, "OFF")
    assert entry.data["version"] == 2 and entry.data["deployment"] == 2 and entry.data["by"] == "alice"
    assert change.to_dict()["audit"] == "OPS#flags#1"
    rows = {r["name"]: r["on"] for r in show(deps, writer)}
    assert rows == {"agent-orchestrator": True, "agent-strategy-library": True, "audit-streaming": False}
    assert status(deps, writer) == {"store": "appconfig", "deployment": 2, "version": "2", "state": "COMPLETE",
                                    "percent": 100.0}


def test_given_a_deployment_still_running_when_a_flag_is_set_then_it_is_refused_before_anything_is_written(
        synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    deps, writer = operator(service, settings)
    service.hold_deployments = True
    set_flag(deps, "audit-streaming", False, "alice", store=writer)

    with pytest.raises(FlagStoreError, match="is DEPLOYING") as refused:
        set_flag(deps, "agent-orchestrator", False, "bob", store=operator(service, settings)[1])

    assert refused.value.code == "flags.deployment_in_progress"
    assert len(service.apps[settings.appconfig_application].profiles[settings.appconfig_profile].versions) == 2
    assert len(deps.audit.entries) == 1


def test_given_start_deployment_fails_when_a_flag_is_set_then_the_new_version_is_deleted_and_nothing_is_audited(
        synth, appconfig):
    from tests.appconfig_service import AwsError

    service, ids = appconfig
    settings = settings_for(synth, ids)
    deps, writer = operator(service, settings)
    service.fail_next["StartDeployment"] = AwsError(409, "ConflictException", "a deployment is in progress")

    with pytest.raises(FlagStoreError, match="version 2 was deleted again"):
        set_flag(deps, "audit-streaming", False, "alice", store=writer)

    assert [v.number for v in service.apps[settings.appconfig_application]
            .profiles[settings.appconfig_profile].versions] == [1]
    assert deps.audit.entries == []
    assert {r["name"]: r["on"] for r in show(deps, writer)}["audit-streaming"] is True


def test_given_someone_else_wrote_a_version_after_we_read_when_we_write_then_appconfig_refuses_and_nothing_changes(
        synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    deps, writer = operator(service, settings)
    base = writer.current()
    _, other = operator(service, settings)
    set_flag(deps, "agent-orchestrator", False, "bob", store=other)

    with pytest.raises(FlagStoreError, match="ConflictException"):
        writer.write({**base, "audit-streaming": {"default": False}}, "stale")

    assert {r["name"]: r["on"] for r in show(deps, writer)} == {
        "agent-orchestrator": False, "agent-strategy-library": True, "audit-streaming": True}


# -- the loopback AppConfig answers in AWS's documented shapes -------------------------------------


def test_given_aws_examples_then_the_loopback_appconfig_answers_carry_every_documented_field(synth, appconfig):
    service, ids = appconfig
    settings = settings_for(synth, ids)
    client = service.client("appconfig")
    app, env, profile = settings.appconfig_application, settings.appconfig_environment, settings.appconfig_profile

    created = client.create_hosted_configuration_version(
        ApplicationId=app, ConfigurationProfileId=profile, Content=b"{}", ContentType="application/json")
    started = client.start_deployment(ApplicationId=app, EnvironmentId=env, ConfigurationProfileId=profile,
                                      DeploymentStrategyId=settings.appconfig_deployment_strategy,
                                      ConfigurationVersion=str(created["VersionNumber"]))
    answers = {
        "appconfig-create-hosted-configuration-version.json": created,
        "appconfig-start-deployment.json": started,
        "appconfig-list-deployments.json": client.list_deployments(ApplicationId=app, EnvironmentId=env),
        "appconfig-list-hosted-configuration-versions.json": client.list_hosted_configuration_versions(
            ApplicationId=app, ConfigurationProfileId=profile),
    }
    for name, answer in answers.items():
        documented = example(name)
        assert set(documented) <= set(answer), name
        for key in ("Items",):
            if key in documented:
                assert set(documented[key][0]) <= set(answer[key][0]), name
    assert isinstance(created["VersionNumber"], int) and isinstance(started["DeploymentNumber"], int)

    definition = json.dumps(example("appconfig-feature-flags-definition.json")).encode()
    assert json.loads(retrieved_form(FEATURE_FLAGS_TYPE, definition)) == example(
        "appconfig-feature-flags-retrieved-form.json")
