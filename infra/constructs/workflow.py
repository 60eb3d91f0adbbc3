"""The Step Functions workflow role and the matcher's permission to manage ``agent-*`` state machines.

State machines are not part of the stack: the matcher creates one per strategy version at runtime
(named ``spec.STATE_MACHINE_PREFIX`` + definition hash) and passes this role to them. The role may
invoke only the node functions' ``live`` aliases.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.nag import acknowledge
from powerx_agent import spec

TASK_RESPONSE_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")


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
    def __init__(self, scope: Construct, id: str, *, prefix: str) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
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
