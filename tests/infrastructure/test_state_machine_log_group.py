"""Logging and tracing of the state machines the matcher creates, on the synthesized template.

State machines are created at run time, so the template holds what they are created with: one log group
(``/aws/vendedlogs/states/...``: https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html) with a
retention and its own KMS key that only CloudWatch Logs may use for that group, the workflow role's
grants (tests/infrastructure/test_least_privilege.py), and the settings the matcher passes to
CreateStateMachine (its environment), which follow the context. What the matcher does with them is in
tests/integration/test_machines_log_and_trace.py.
"""

from __future__ import annotations

import pytest

from conftest import CHANGED_CONTEXT, ref_id, render
from powerx_agent import spec


def _group(resources: dict) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"
                and r["Properties"].get("LogGroupName") == spec.STATE_MACHINE_LOG_GROUP]
    return found


def _matcher_env(template: dict) -> dict:
    (fn,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
             and r["Properties"]["FunctionName"] == spec.FUNCTIONS_BY_KEY["matcher"].name]
    return fn["Properties"]["Environment"]["Variables"]


def test_given_the_state_machine_log_group_when_read_then_it_has_a_retention_and_its_own_kms_key(synth):
    logical, group = _group(synth.resources)
    assert group["Properties"]["RetentionInDays"] == 30  # logRetentionDays
    key = synth.resources[ref_id(group["Properties"]["KmsKeyId"])]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    logs_statement = next(s for s in statements if s.get("Sid") == "AllowCloudWatchLogsForTheStateMachineLogGroup")
    assert "logs." in str(logs_statement["Principal"]["Service"])
    context = render(synth.resources, logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
    assert context == f"arn:${{Partition}}:logs:${{Region}}:${{Account}}:log-group:{spec.STATE_MACHINE_LOG_GROUP}"


def test_given_the_matcher_when_its_environment_is_read_then_machines_are_created_logging_all_and_traced(synth):
    env = _matcher_env(synth.json)
    logical, _ = _group(synth.resources)
    assert env["SFN_LOG_GROUP_ARN"] == {"Fn::GetAtt": [logical, "Arn"]}  # CloudFormation's Arn ends with ":*"
    assert (env["SFN_LOG_LEVEL"], env["SFN_LOG_INCLUDE_EXECUTION_DATA"], env["SFN_TRACING"]) == ("ALL", "false", "true")
    assert synth.json["Outputs"]["StateMachineLogGroupArn"]["Value"] == {"Fn::GetAtt": [logical, "Arn"]}


def test_given_other_logging_settings_in_the_context_when_synthesized_then_the_matcher_passes_them_on(resynth):
    _, changed = resynth
    assert CHANGED_CONTEXT["stateMachineLogLevel"] == "ERROR"
    env = _matcher_env(changed)
    assert (env["SFN_LOG_LEVEL"], env["SFN_LOG_INCLUDE_EXECUTION_DATA"], env["SFN_TRACING"]) == ("ERROR", "true", "false")


def test_given_a_log_level_step_functions_does_not_know_when_configured_then_the_synth_refuses_it():
    from aws_cdk import aws_logs as logs

    from infra.components.workflow import Logging

    with pytest.raises(ValueError, match="ALL, ERROR, FATAL, OFF"):
        Logging(level="VERBOSE", include_execution_data=False, tracing=True, retention=logs.RetentionDays.ONE_MONTH)
