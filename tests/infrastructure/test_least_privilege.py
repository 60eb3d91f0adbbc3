"""Every function role's policy, asserted EXACTLY (actions and resources), plus the workflow role.

The expectations are written out here by hand (not derived from infra/constants.py), so a change in
a grant must be made twice: in the stack and in this reviewed list (and docs/architecture.md).
"""

from __future__ import annotations

import json

import pytest

from conftest import role_statements
from powerx_agent import spec

P = "arn:${Partition}"
SCOPE = "${Region}:${Account}"
TABLE_KEY = "arn(key:PowerX Agent: DynamoDB tables (customer-managed))"
STATE_MACHINES = f"{P}:states:{SCOPE}:stateMachine:agent-*"
APPCONFIG_PROFILE = (
    f"{P}:appconfig:{SCOPE}:application/ref(appconfig-app:powerx-agent)/environment/ref(appconfig-env:prod)"
    "/configuration/ref(appconfig-profile:feature-flags)"
)
GET, PUT, UPDATE, QUERY = "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"


def stmt(actions, resources, condition=None) -> tuple:
    return (
        tuple(sorted(actions)),
        tuple(sorted(resources)),
        json.dumps(condition, sort_keys=True) if condition else None,
    )


def table(name: str, *actions: str) -> tuple:
    return stmt(actions, [f"arn(table:{name})"])


def own_logs(fn: str) -> tuple:
    return stmt(["logs:CreateLogStream", "logs:PutLogEvents"], [f"arn(loggroup:/aws/lambda/powerx-agent-{fn})"])


XRAY = stmt(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])
KMS_WRITE = stmt(["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"], [TABLE_KEY])
KMS_READ = stmt(["kms:Decrypt", "kms:DescribeKey"], [TABLE_KEY])
AUDIT = table("agent_audit", PUT, QUERY)
DOWNSTREAM = stmt(["secretsmanager:GetSecretValue"], ["ref(secret:powerx/agent/downstream-credentials)"])
# one key set per purpose: replay callers' keys (replay_api only); the engine's callback key (the functions
# that sign callback URLs and the one that verifies them); no function reads both
REPLAY_KEYS = stmt(["secretsmanager:GetSecretValue"], ["ref(secret:powerx/agent/replay-keys)"])
CALLBACK_KEY = stmt(["secretsmanager:GetSecretValue"], ["ref(secret:powerx/agent/callback-keys)"])
GSI1 = stmt([QUERY], ["arn(table:agent_workflows)/index/gsi1"])  # the review backlog gauge
FLAGS = stmt(["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"], [APPCONFIG_PROFILE])

# Traced from the code (docs/architecture.md "Function permissions" names the line behind each action).
EXPECTED: dict[str, set[tuple]] = {
    "ingest": {
        own_logs("ingest"), XRAY, KMS_WRITE, AUDIT, FLAGS,
        table("agent_events", GET, PUT, UPDATE),
        table("agent_tenants", GET),
        stmt(["sqs:SendMessage"], ["arn(queue:powerx-agent-match)"]),
        stmt(["sqs:SendMessage"], ["arn(queue:powerx-agent-ingest-dlq)"]),
    },
    "matcher": {
        own_logs("matcher"), XRAY, KMS_WRITE, AUDIT, CALLBACK_KEY, FLAGS, DOWNSTREAM,
        table("agent_events", GET, UPDATE),
        table("agent_workflows", GET, PUT, UPDATE),
        table("agent_strategies", GET, QUERY),
        GSI1,
        stmt(
            ["states:DescribeStateMachine", "states:CreateStateMachine", "states:UpdateStateMachine",
             "states:PublishStateMachineVersion", "states:TagResource", "states:UntagResource",
             "states:ListTagsForResource", "states:DescribeStateMachineAlias", "states:CreateStateMachineAlias",
             "states:UpdateStateMachineAlias", "states:StartExecution"],
            [STATE_MACHINES],
        ),
        stmt(
            ["iam:PassRole"],
            ["arn(role:Assumed by the agent-* state machines the matcher creates; invokes the node functions)"],
            {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
        ),
        stmt(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], ["arn(queue:powerx-agent-match)"]),
    },
    "node_plugin": {
        own_logs("node-plugin"), XRAY, KMS_WRITE, AUDIT, CALLBACK_KEY, DOWNSTREAM,
        table("agent_workflows", GET, PUT, UPDATE),
        table("agent_tenants", GET),
        stmt(["states:SendTaskSuccess"], [STATE_MACHINES]),
    },
    "node_notify": {
        own_logs("node-notify"), XRAY, KMS_WRITE, AUDIT, DOWNSTREAM,
        table("agent_workflows", GET, UPDATE),
    },
    "node_review": {
        own_logs("node-review"), XRAY, KMS_WRITE, AUDIT, CALLBACK_KEY, DOWNSTREAM,
        table("agent_workflows", GET, PUT, UPDATE),
        table("agent_tenants", GET),
        GSI1,
        stmt(["states:SendTaskSuccess"], [STATE_MACHINES]),
    },
    "workflow": {
        own_logs("workflow"), XRAY, KMS_WRITE, AUDIT, CALLBACK_KEY, DOWNSTREAM,
        table("agent_workflows", GET, PUT, UPDATE, QUERY),
        table("agent_tenants", GET),
        GSI1,
        stmt(["states:StartExecution"], [STATE_MACHINES]),  # an Express head's hand-off to its Standard machine
    },
    "audit_stream": {
        own_logs("audit-stream"), XRAY, FLAGS, KMS_READ, KMS_WRITE, AUDIT, DOWNSTREAM,
        table("agent_strategies", GET, "dynamodb:DeleteItem", UPDATE),
        stmt([QUERY], ["arn(table:agent_audit)/index/by_time"]),
        stmt(["logs:CreateLogStream", "logs:PutLogEvents"], ["arn(loggroup:/powerx/agent/audit)"]),
        stmt(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
             ["streamarn(table:agent_audit)"]),
        stmt(["dynamodb:ListStreams"], ["*"]),
        # the mapping's on-failure destination: Lambda sends a batch's metadata with the function's role
        stmt(["sqs:SendMessage"], ["arn(queue:powerx-agent-audit-stream-dlq)"]),
    },
    "callbacks_api": {
        own_logs("callbacks-api"), XRAY, KMS_WRITE, AUDIT, CALLBACK_KEY,
        table("agent_workflows", GET, UPDATE, QUERY),
        GSI1,
        stmt(["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"], [STATE_MACHINES]),
    },
    "replay_api": {
        own_logs("replay-api"), XRAY, KMS_WRITE, AUDIT, REPLAY_KEYS, FLAGS,
        table("agent_events", GET),
        table("agent_tenants", GET),
        stmt(["events:PutEvents"], ["arn(bus:powerx-agent)"]),
    },
    # escalation/backlog.py emit_backlog -> WorkflowsStore.count_open_reviews (Select COUNT on gsi1), every minute
    "backlog_gauge": {own_logs("backlog-gauge"), XRAY, KMS_READ, GSI1},
}


def _function_role(synth, key: str) -> str:
    name = spec.FUNCTIONS_BY_KEY[key].name
    for fn in synth.of_type("AWS::Lambda::Function").values():
        if fn["Properties"]["FunctionName"] == name:
            return fn["Properties"]["Role"]["Fn::GetAtt"][0]
    raise AssertionError(f"function {name} not in the template")


def test_every_function_has_an_expectation():
    assert set(EXPECTED) == {f.key for f in spec.FUNCTIONS}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_function_role_policy_is_exactly(synth, key):
    actual = role_statements(synth, _function_role(synth, key))
    missing, extra = EXPECTED[key] - actual, actual - EXPECTED[key]
    assert not missing and not extra, f"{key}: missing {sorted(missing)}; unexpected {sorted(extra)}"


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_function_roles_have_no_managed_policies_and_are_not_shared(synth, key):
    role_id = _function_role(synth, key)
    role = synth.resources[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns")
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    others = {_function_role(synth, k) for k in EXPECTED if k != key}
    assert role_id not in others


def _workflow_role_id(synth) -> str:
    return synth.logical_id(synth.stack.workflow.role)


def test_workflow_role_invokes_only_the_live_alias_of_the_four_node_functions_and_logs_and_traces(synth):
    aliases = [synth.logical_id(synth.stack.functions.aliases[k])
               for k in ("node_plugin", "node_notify", "node_review", "workflow")]
    # the alias ARN: not $LATEST, no other version
    invoke = stmt(["lambda:InvokeFunction"], [f"ref(AWS::Lambda::Alias:{alias})" for alias in aliases])
    # what Step Functions documents for logging to CloudWatch Logs (no resource-level permissions) and X-Ray
    delivery = stmt(["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"], ["*"])
    streams = stmt(["logs:CreateLogStream", "logs:PutLogEvents"],
                   ["arn(loggroup:/aws/vendedlogs/states/powerx-agent)"])
    xray = stmt(["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                 "xray:GetSamplingTargets"], ["*"])
    assert role_statements(synth, _workflow_role_id(synth)) == {invoke, delivery, streams, xray}


def test_workflow_role_trusts_only_agent_state_machines_of_this_account(synth):
    role = synth.resources[_workflow_role_id(synth)]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    arn_like = statement["Condition"]["ArnLike"]["aws:SourceArn"]
    assert arn_like["Fn::Join"][1][-1] == ":stateMachine:agent-*"
    assert not role.get("ManagedPolicyArns")


def test_pass_role_only_to_the_workflow_role_with_the_states_condition(synth):
    pass_role = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a in ("iam:PassRole", "iam:*", "*") for a in actions):
                pass_role.append((policy["Properties"]["Roles"], statement))
    assert len(pass_role) == 1, pass_role
    roles, statement = pass_role[0]
    assert roles == [{"Ref": _function_role(synth, "matcher")}]
    assert statement["Resource"] == {"Fn::GetAtt": [_workflow_role_id(synth), "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}}


def test_no_statement_grants_a_wildcard_action(synth):
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a], statement


def test_only_xray_list_streams_and_state_machine_log_delivery_use_resource_star(synth):
    # each of these has no resource-level permissions (AWS service authorization reference)
    allowed = {("xray:PutTelemetryRecords", "xray:PutTraceSegments"), ("dynamodb:ListStreams",),
               ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"),
               ("logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                "logs:UpdateLogDelivery")}
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert tuple(sorted(actions)) in allowed, statement
