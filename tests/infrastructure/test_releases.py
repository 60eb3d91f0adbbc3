"""Releases on the synthesized template: a version of every function, a ``live`` alias each, and every
trigger invoking the alias (so ``powerx-agent release rollback`` moves the whole service).

- each function has one AWS::Lambda::Version of this release (retained: earlier versions stay for a
  rollback) and an alias ``live`` on it; the release id is the same everywhere and is an output;
- the rule target, both event source mappings, both API integrations and their Lambda permissions,
  the Step Functions task ARNs (matcher environment) and ingest's asynchronous invocation config are
  on the alias; nothing invokes an unqualified function;
- the release id is deterministic (same inputs, same id: a deploy of the same code publishes nothing)
  and any change to a function publishes a new version of every function (they move together).
"""

from __future__ import annotations

from typing import Any

from conftest import ref_id
from powerx_agent import spec

LIVE = spec.LIVE_ALIAS


def _release(synth: Any) -> str:
    return synth.json["Outputs"]["Release"]["Value"]


def test_given_the_template_when_versions_are_read_then_every_function_has_one_retained_version_of_the_release(synth):
    release = _release(synth)
    versions = synth.of_type("AWS::Lambda::Version")
    assert sorted(synth.function_name_of(v["Properties"]["FunctionName"]) for v in versions.values()) == sorted(
        f.name for f in spec.FUNCTIONS)
    for logical, version in versions.items():
        assert version["Properties"]["Description"] == spec.release_description(release)
        assert (version["DeletionPolicy"], version["UpdateReplacePolicy"]) == ("Retain", "Retain")
        assert release in logical  # a new release is a new resource; the old one is retained, not replaced
    for function in synth.of_type("AWS::Lambda::Function").values():
        assert function["Properties"]["Environment"]["Variables"]["POWERX_RELEASE"] == release


def test_given_the_template_when_aliases_are_read_then_each_function_has_a_live_alias_on_its_release_version(synth):
    aliases = synth.of_type("AWS::Lambda::Alias")
    assert len(aliases) == len(spec.FUNCTIONS)
    for alias in aliases.values():
        props = alias["Properties"]
        assert props["Name"] == LIVE
        version = synth.resources[props["FunctionVersion"]["Fn::GetAtt"][0]]
        assert version["Type"] == "AWS::Lambda::Version"
        assert synth.function_id(version["Properties"]["FunctionName"]) == synth.function_id(props["FunctionName"])
        assert "RoutingConfig" not in props  # all traffic on one version


def test_given_the_triggers_when_read_then_every_one_invokes_the_live_alias(synth):
    triggers: list[tuple[str, Any]] = []
    for rule in synth.of_type("AWS::Events::Rule").values():
        triggers += [("rule target", t["Arn"]) for t in rule["Properties"]["Targets"]
                     if synth.resources[ref_id(t["Arn"])]["Type"].startswith("AWS::Lambda::")]
    triggers += [("event source mapping", m["Properties"]["FunctionName"])
                 for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()]
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        parts = method["Properties"]["Integration"]["Uri"]["Fn::Join"][1]
        triggers += [("API integration", p) for p in parts if isinstance(p, dict) and "Ref" in p
                     and not p["Ref"].startswith("AWS::")]
    triggers += [("permission", p["Properties"]["FunctionName"]) for p in synth.of_type("AWS::Lambda::Permission").values()]
    kinds = {kind for kind, _ in triggers}
    assert kinds == {"rule target", "event source mapping", "API integration", "permission"}
    assert len([k for k, _ in triggers if k == "event source mapping"]) == len(spec.EVENT_SOURCES_MAPPINGS)
    not_alias = [(kind, value) for kind, value in triggers if not synth.invokes_alias(value, LIVE)]
    assert not not_alias


def test_given_compiled_state_machines_when_their_task_arns_come_from_the_matcher_then_they_are_alias_arns(synth):
    from infra import constants

    matcher = synth.resources[synth.logical_id(synth.stack.functions.by_key["matcher"])]
    env = matcher["Properties"]["Environment"]["Variables"]
    for key, var in constants.NODE_ARN_ENV.items():
        (function_arn, suffix) = env[var]["Fn::Join"][1]
        assert suffix == f":{LIVE}"
        assert function_arn == {"Fn::GetAtt": [synth.logical_id(synth.stack.functions.by_key[key]), "Arn"]}


def test_given_the_async_config_when_read_then_it_is_on_the_alias_the_rule_invokes(synth):
    configs = synth.of_type("AWS::Lambda::EventInvokeConfig").values()
    assert configs
    for config in configs:  # ingest's, and the schedule's
        assert config["Properties"]["Qualifier"] == LIVE
        alias = synth.logical_id(synth.stack.functions.aliases[
            next(f.key for f in spec.FUNCTIONS if f.name == synth.function_name_of(config["Properties"]["FunctionName"]))])
        assert alias in config["DependsOn"]  # the alias exists before its config


def test_given_the_same_inputs_when_synthesized_again_then_the_release_is_the_same(synth, resynth):
    same, _ = resynth
    assert same["Outputs"]["Release"]["Value"] == _release(synth)
    assert set(k for k, r in same["Resources"].items() if r["Type"] == "AWS::Lambda::Version") == set(
        synth.of_type("AWS::Lambda::Version"))


def test_given_one_function_setting_changes_when_synthesized_then_every_function_gets_a_new_version(synth, resynth):
    _, changed = resynth
    release = changed["Outputs"]["Release"]["Value"]
    assert release != _release(synth)
    new_versions = {k for k, r in changed["Resources"].items() if r["Type"] == "AWS::Lambda::Version"}
    assert len(new_versions) == len(spec.FUNCTIONS)
    assert not new_versions & set(synth.of_type("AWS::Lambda::Version"))  # every function publishes again
