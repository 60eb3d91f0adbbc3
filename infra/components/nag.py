"""cdk-nag v3 acknowledgments: every acknowledged rule carries a reason (tests check it).

cdk-nag 3 reads CDK's native ``Validations.of(construct).acknowledge(...)`` metadata on a resource or
any of its ancestors. Rules with several findings per resource (IAM4/IAM5) are acknowledged per
finding: ``AwsSolutions-IAM5[Resource::*]``.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

# every acknowledgment made by the stack code: (construct path, rule id, reason); read by tests/docs
ACKNOWLEDGED: list[tuple[str, str, str]] = []


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    if not reason or len(reason.strip()) < 20:
        raise ValueError(f"cdk-nag acknowledgment {rule_id} on {scope.node.path} needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
    ACKNOWLEDGED.append((scope.node.path, rule_id, reason))


def logical_id(element: IConstruct) -> str:
    """The resolved logical ID of a construct's CloudFormation resource (for finding ids like <Id.Arn>)."""
    cfn = element if isinstance(element, CfnElement) else element.node.default_child
    assert isinstance(cfn, CfnElement), f"{element.node.path} has no CloudFormation resource"
    stack = Stack.of(cfn)
    return str(stack.resolve(stack.get_logical_id(cfn)))
