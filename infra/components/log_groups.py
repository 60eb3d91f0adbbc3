"""A KMS-encrypted log group with a retention: its own rotating key, usable only by CloudWatch Logs for
that one group (the encryption context names the group), as CloudWatch Logs documents for KMS
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html)."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


def encrypted_log_group(scope: Construct, *, group_id: str, key_id: str, sid: str, name: str, key_alias: str,
                        key_description: str, retention: logs.RetentionDays,
                        removal_policy: RemovalPolicy) -> tuple[kms.Key, logs.LogGroup]:
    key = kms.Key(scope, key_id, alias=key_alias, description=key_description, enable_key_rotation=True,
                  removal_policy=removal_policy)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn":
                                      f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{name}"}},
        )
    )
    group = logs.LogGroup(scope, group_id, log_group_name=name, retention=retention, encryption_key=key,
                          removal_policy=removal_policy)
    return key, group
