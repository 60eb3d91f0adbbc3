"""CloudFormation: the outputs of a deployed stack (``--stack NAME`` names every resource from them)."""

from __future__ import annotations

from typing import Any


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """OutputKey → OutputValue of ``stack`` (DescribeStacks); the caller reports a failure as a usage error."""
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
