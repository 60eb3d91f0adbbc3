"""The Step Functions workflow role, the state machines' log group, and the matcher's permission to manage
``agent-*`` state machines.

State machines are not part of the stack: the matcher creates one per strategy version at runtime
(named ``spec.STATE_MACHINE_PREFIX`` + definition hash) and passes this role to them. The role may
invoke only the node functions' ``live`` aliases.

Every machine the matcher creates logs to one log group, ``/aws/vendedlogs/states/<prefix>powerx-agent``
(the ``/aws/vendedlogs/`` prefix keeps CloudWatch Logs' account resource policy from growing with each
group: https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html), KMS-encrypted with its own key,
with a retention; level and execution data come from the context (:class:`Logging`), X-Ray tracing is
on. Express executions have no other history (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
The role gets the log-delivery actions Step Functions documents for logging (they have no resource-level
permissions, so ``*``), ``CreateLogStream``/``PutLogEvents`` on that group only, and the X-Ray actions
Step Functions documents for tracing (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.log_groups import encrypted_log_group
from infra.components.nag import acknowledge
from powerx_agent import spec
from powerx_agent.settings import Env

TASK_RESPONSE_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")
# https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy (Resource "*": these
# CloudWatch Logs actions support no resource-level permissions)
LOG_DELIVERY_ACTIONS = ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")
# https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html (Resource "*": X-Ray has no resource types)
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                "xray:GetSamplingTargets")
LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")


@dataclass(frozen=True)
class Logging:
    """The state machines' logging and tracing (context ``stateMachineLogLevel``,
    ``stateMachineLogExecutionData``, ``stateMachineTracing``; retention ``logRetentionDays``)."""

    level: str
    include_execution_data: bool
    tracing: bool
    retention: logs.RetentionDays

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise ValueError(f"stateMachineLogLevel must be one of {', '.join(LOG_LEVELS)}, not {self.level!r}")


def state_machine_log_group_name(prefix: str) -> str:
    """``spec.STATE_MACHINE_LOG_GROUP`` with the deployment's prefix in its last segment."""
    base, _, last = spec.STATE_MACHINE_LOG_GROUP.rpartition("/")
    return f"{base}/{prefix}{last}"


def state_machine_arn_pattern(prefix: str) -> str:
    """arn:<partition>:states:<region>:<account>:stateMachine:<prefix>agent-* (versions and aliases too)."""
    return (
        f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:"
        f"{prefix}{spec.STATE_MACHINE_PREFIX}*"
    )


def execution_arn_pattern(prefix: str) -> str:
    return (
        f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:"
        f"{prefix}{spec.STATE_MACHINE_PREFIX}*"
    )


class Workflow(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, logging: Logging,
                 removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
        self.logging = logging
        self.state_machine_arns = state_machine_arn_pattern(prefix)
        self.execution_arns = execution_arn_pattern(prefix)
        self.role = iam.Role(
            self,
            "WorkflowRole",
            role_name=f"{prefix}{spec.WORKFLOW_ROLE_NAME}-{Aws.REGION}",
            description="Assumed by the agent-* state machines the matcher creates; invokes the node functions",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": self.state_machine_arns},
                },
            ),
        )
        self._log_group(prefix, removal_policy)
        self.role.add_to_policy(iam.PolicyStatement(sid="StateMachineTracing", actions=list(XRAY_ACTIONS),
                                                    resources=["*"]))
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "The actions Step Functions documents for logging (CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, "
            "DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and "
            "for X-Ray tracing support no resource-level permissions; writing log streams is limited to the state "
            "machines' own log group.",
        )

    def _log_group(self, prefix: str, removal_policy: RemovalPolicy) -> None:
        self.log_key, self.log_group = encrypted_log_group(
            self, group_id="StateMachineLogs", key_id="StateMachineLogKey",
            sid="AllowCloudWatchLogsForTheStateMachineLogGroup", name=state_machine_log_group_name(prefix),
            key_alias=f"alias/{prefix}powerx-agent/state-machine-logs",
            key_description="PowerX Agent: state machine execution logs", retention=self.logging.retention,
            removal_policy=removal_policy,
        )
        self.role.add_to_policy(iam.PolicyStatement(sid="StateMachineLogDelivery", actions=list(LOG_DELIVERY_ACTIONS),
                                                    resources=["*"]))
        self.role.add_to_policy(iam.PolicyStatement(sid="StateMachineLogStreams",
                                                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                    resources=[self.log_group.log_group_arn]))

    def state_machine_environment(self) -> dict[str, str]:
        """What the matcher passes to CreateStateMachine/UpdateStateMachine (settings.py reads it)."""
        return {
            Env.SFN_LOG_GROUP_ARN: self.log_group.log_group_arn,
            Env.SFN_LOG_LEVEL: self.logging.level,
            Env.SFN_LOG_INCLUDE_EXECUTION_DATA: "true" if self.logging.include_execution_data else "false",
            Env.SFN_TRACING: "true" if self.logging.tracing else "false",
        }

    def allow_invoke(self, aliases: Iterable[lambda_.IFunction]) -> None:
        """The workflow role may invoke exactly these functions through their ``live`` alias (the task ARNs
        the matcher compiles): not ``$LATEST``, not any other version or alias."""
        self.role.add_to_policy(
            iam.PolicyStatement(sid="InvokeNodeFunctions", actions=["lambda:InvokeFunction"],
                                resources=[alias.function_arn for alias in aliases])
        )

    def grant_manage(self, grantee: iam.IGrantable, actions: Iterable[str]) -> None:
        """The matcher: the given actions on ``agent-*`` state machines (infra.constants.STATES_ACCESS); pass the role."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ManageAgentStateMachines", actions=list(actions), resources=[self.state_machine_arns]
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassWorkflowRoleToStepFunctions",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
            )
        )
        self._acknowledge_prefix(grantee, "stateMachine")

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """StartExecution on ``agent-*`` state machines: an Express head's hand-off to its Standard machine."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartAgentStateMachines", actions=["states:StartExecution"], resources=[self.state_machine_arns]
            )
        )
        self._acknowledge_prefix(grantee, "stateMachine")

    def grant_task_response(self, grantee: iam.IGrantable, actions: Iterable[str] = TASK_RESPONSE_ACTIONS) -> None:
        """Resume waitForTaskToken tasks of ``agent-*`` state machines (callbacks API; node_plugin success)."""
        unknown = set(actions) - set(TASK_RESPONSE_ACTIONS)
        if unknown:
            raise ValueError(f"not task-response actions: {sorted(unknown)}")
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RespondToAgentTasks", actions=list(actions), resources=[self.state_machine_arns]
            )
        )
        self._acknowledge_prefix(grantee, "stateMachine")

    def _acknowledge_prefix(self, grantee: iam.IGrantable, kind: str) -> None:
        role = grantee.grant_principal
        assert isinstance(role, iam.Role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"{kind}:{self.prefix}{spec.STATE_MACHINE_PREFIX}*]",
            f"State machines are created at runtime, one per strategy version, named "
            f"'{self.prefix}{spec.STATE_MACHINE_PREFIX}<definition hash>': the grant is scoped to that name "
            f"prefix ({kind} ARNs), not to all state machines.",
        )
