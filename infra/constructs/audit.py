"""The audit log group (spec.AUDIT_LOG_GROUP), KMS-encrypted, where the audit stream function writes."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from powerx_agent import spec


class Audit(Construct):
    def __init__(
        self, scope: Construct, id: str, *, prefix: str, retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, id)
        # "/powerx/agent/audit", or "/<prefix>/powerx/agent/audit" for a prefixed deployment
        self.log_group_name = f"/{prefix.strip('-_/')}{spec.AUDIT_LOG_GROUP}" if prefix else spec.AUDIT_LOG_GROUP
        self.key = kms.Key(
            self,
            "AuditLogKey",
            alias=f"alias/{prefix}powerx-agent/audit-logs",
            description="PowerX Agent: audit log group",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        log_group_arn = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{self.log_group_name}"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForTheAuditLogGroup",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            )
        )
        self.log_group = logs.LogGroup(
            self,
            "AuditLogGroup",
            log_group_name=self.log_group_name,
            retention=retention,
            encryption_key=self.key,
            removal_policy=removal_policy,
        )
