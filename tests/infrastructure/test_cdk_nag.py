"""cdk-nag AwsSolutions: zero unacknowledged errors or warnings; every acknowledgment has a reason."""

from __future__ import annotations

import re

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

# Every rule the stack may acknowledge; a new one must be reviewed here (and in docs/architecture.md).
ALLOWED_RULES = {
    "AwsSolutions-SMG4",  # application-level rotation of the signing keys
    "AwsSolutions-SQS3",  # the dead-letter queues themselves
    "AwsSolutions-APIG3",  # WAF optional on two internal, signed routes
    "AwsSolutions-APIG4",  # HMAC-signed requests instead of an API Gateway authorizer
    "AwsSolutions-COG4",  # same
    "AwsSolutions-IAM4",  # API Gateway's CloudWatch role (AWS-managed policy)
    "AwsSolutions-IAM5",  # X-Ray / ListStreams '*', own log streams, agent-* state machines, node versions
    "AwsSolutions-L1",  # runtime pinned to the layer's Python version
}


@pytest.fixture(scope="module")
def report(synth):
    return AwsSolutionsChecks(verbose=True).validate_scope(synth.stack)


def test_no_unacknowledged_findings(report):
    findings = [
        f"{v.severity} {v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert report.success and not findings, "\n".join(findings)


def _acknowledgments(synth) -> list[tuple[str, str, str]]:
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found = []
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key and entry.data:
                for rule_id, reason in dict(entry.data).items():
                    found.append((construct.node.path, re.sub(r"^annotation::", "", rule_id, flags=re.I), reason))
    return found


def test_every_acknowledgment_carries_a_reason(synth):
    acknowledgments = _acknowledgments(synth)
    assert acknowledgments, "expected the documented acknowledgments"
    for path, rule_id, reason in acknowledgments:
        assert isinstance(reason, str) and len(reason.split()) >= 6, f"{path}: {rule_id} has no real reason"


def test_only_reviewed_rules_are_acknowledged(synth):
    rules = {rule_id.split("[")[0] for _, rule_id, _ in _acknowledgments(synth)}
    assert rules <= ALLOWED_RULES, rules - ALLOWED_RULES


def test_wildcard_acknowledgments_are_finding_specific(synth):
    for path, rule_id, _ in _acknowledgments(synth):
        if rule_id.startswith(("AwsSolutions-IAM5", "AwsSolutions-IAM4")):
            assert re.fullmatch(r"AwsSolutions-IAM[45]\[.+\]", rule_id), f"{path}: {rule_id} is not per finding"
