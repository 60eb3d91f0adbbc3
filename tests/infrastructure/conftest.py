"""Shared fixtures for the infrastructure tests: the stack is synthesized ONCE per session.

The dependency layer's content does not change the template (only its asset hash), so the
session uses a placeholder layer directory (``layerAssetDir`` context) and stays offline; the CLI
synth test exercises the real layer build.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")


@dataclass
class Synth:
    app: Any
    stack: Any
    template: Any  # aws_cdk.assertions.Template
    json: dict

    @property
    def resources(self) -> dict[str, dict]:
        return self.json["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        from infra.components.nag import logical_id

        return logical_id(construct)

    def function_id(self, value: Any) -> str:
        """A reference to a function, one of its versions or its alias -> the AWS::Lambda::Function's id."""
        logical = ref_id(value)
        resource = self.resources[logical]
        if resource["Type"] in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            return ref_id(resource["Properties"]["FunctionName"])
        assert resource["Type"] == "AWS::Lambda::Function", resource["Type"]
        return logical

    def function_name_of(self, value: Any) -> str:
        return self.resources[self.function_id(value)]["Properties"]["FunctionName"]

    def invokes_alias(self, value: Any, alias: str) -> bool:
        """True when the reference is the function's alias named ``alias`` (a Ref, or the qualified name
        CDK builds for event source mappings: Join([Select(6, Split(":", Ref alias)), ":<alias>"]))."""
        resource = self.resources[ref_id(value)]
        if resource["Type"] != "AWS::Lambda::Alias" or resource["Properties"]["Name"] != alias:
            return False
        if "Fn::Join" in value:
            return value["Fn::Join"][1][-1] == f":{alias}"
        return value == {"Ref": ref_id(value)}


def ref_id(value: Any) -> str:
    """The (first) logical id a template value refers to: {"Ref": id}, {"Fn::GetAtt": [id, attr]}, or one
    inside a Join/Select/Split."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        inner_values: list[Any] = list(value.values())
    elif isinstance(value, list):
        inner_values = value
    else:
        inner_values = []
    for inner in inner_values:
        try:
            return ref_id(inner)
        except AssertionError:
            continue
    raise AssertionError(f"not a reference: {value!r}")


@pytest.fixture(scope="session")
def layer_placeholder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layer")
    (root / "python").mkdir()
    (root / "python" / "README.txt").write_text("placeholder layer for offline synth in tests\n")
    return root


@pytest.fixture(scope="session")
def synth(layer_placeholder: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import build_app

    app = cdk.App(
        context={"layerAssetDir": str(layer_placeholder), "cdkNag": False},
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )
    app, stack = build_app(app)
    template = Template.from_stack(stack)
    return Synth(app=app, stack=stack, template=template, json=template.to_json())


CHANGED_CONTEXT = {"notificationsUrl": "https://notify.changed.example.internal", "stateMachineLogLevel": "ERROR",
                   "stateMachineLogExecutionData": "true", "stateMachineTracing": "false"}


@pytest.fixture(scope="session")
def resynth(layer_placeholder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """Two more syntheses' templates: the same context again, and one with CHANGED_CONTEXT."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import build_app

    def run(**context: Any) -> dict:
        app = cdk.App(context={"layerAssetDir": str(layer_placeholder), "cdkNag": False, **context},
                      outdir=str(tmp_path_factory.mktemp("cdk.out")))
        _, stack = build_app(app)
        return Template.from_stack(stack).to_json()

    return run(), run(**CHANGED_CONTEXT)


# ---------------------------------------------------------------------------------------------
# Rendering intrinsic functions into readable strings, so tests can compare policies exactly:
#   {"Fn::GetAtt": [<table>, "Arn"]}  -> "arn(table:agent_events)"
#   {"Ref": <secret>}                 -> "ref(secret:powerx/agent/signing-keys)"
#   {"Fn::Join": ["", [...]]}         -> the parts rendered and joined
# ---------------------------------------------------------------------------------------------
_NAME_PROPS = {
    "AWS::DynamoDB::Table": ("table", "TableName"),
    "AWS::SQS::Queue": ("queue", "QueueName"),
    "AWS::Lambda::Function": ("function", "FunctionName"),
    "AWS::Events::EventBus": ("bus", "Name"),
    "AWS::SecretsManager::Secret": ("secret", "Name"),
    "AWS::Logs::LogGroup": ("loggroup", "LogGroupName"),
    "AWS::KMS::Key": ("key", "Description"),
    "AWS::IAM::Role": ("role", "Description"),
    "AWS::AppConfig::Application": ("appconfig-app", "Name"),
    "AWS::AppConfig::Environment": ("appconfig-env", "Name"),
    "AWS::AppConfig::ConfigurationProfile": ("appconfig-profile", "Name"),
    "AWS::SNS::Topic": ("topic", "TopicName"),
}
_PSEUDO = {"AWS::Partition": "${Partition}", "AWS::Region": "${Region}", "AWS::AccountId": "${Account}"}


def describe(resources: dict[str, dict], logical_id: str) -> str:
    resource = resources[logical_id]
    kind, prop = _NAME_PROPS.get(resource["Type"], (resource["Type"], None))
    name = resource.get("Properties", {}).get(prop) if prop else None
    if isinstance(name, dict):  # e.g. a role name built with Fn::Join
        name = render(resources, name)
    return f"{kind}:{name or logical_id}"


def render(resources: dict[str, dict], value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [render(resources, v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return _PSEUDO.get(arg) or f"ref({describe(resources, arg)})"
        if fn == "Fn::GetAtt":
            return f"{arg[1].lower()}({describe(resources, arg[0])})"
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(render(resources, p)) for p in parts)
    if isinstance(value, dict):
        return {k: render(resources, v) for k, v in value.items()}
    return value


def role_statements(synth: Synth, role_logical_id: str) -> set[tuple]:
    """Every Allow statement attached to a role: {(sorted actions, sorted resources, condition json)}."""
    import json

    found: set[tuple] = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        roles = [r.get("Ref") for r in policy["Properties"].get("Roles", [])]
        if role_logical_id not in roles:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            condition = statement.get("Condition")
            found.add(
                (
                    tuple(sorted(actions)),
                    tuple(sorted(str(render(synth.resources, r)) for r in resources)),
                    json.dumps(render(synth.resources, condition), sort_keys=True) if condition else None,
                )
            )
    return found
