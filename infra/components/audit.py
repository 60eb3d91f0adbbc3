"""The audit log group (spec.AUDIT_LOG_GROUP), KMS-encrypted, where the audit stream function writes."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.log_groups import encrypted_log_group
from powerx_agent import spec


class Audit(Construct):
    def __init__(
        self, scope: Construct, id: str, *, prefix: str, retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, id)
        # "/powerx/agent/audit", or "/<prefix>/powerx/agent/audit" for a prefixed deployment
        self.log_group_name = f"/{prefix.strip('-_/')}{spec.AUDIT_LOG_GROUP}" if prefix else spec.AUDIT_LOG_GROUP
        self.key, self.log_group = encrypted_log_group(
            self, group_id="AuditLogGroup", key_id="AuditLogKey", sid="AllowCloudWatchLogsForTheAuditLogGroup",
            name=self.log_group_name, key_alias=f"alias/{prefix}powerx-agent/audit-logs",
            key_description="PowerX Agent: audit log group", retention=retention, removal_policy=removal_policy,
        )
