"""DynamoDB tables from ``spec.TABLES``: on-demand, PITR, customer-managed KMS key, TTL, streams."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from powerx_agent import spec

_STREAMS = {
    "NEW_IMAGE": dynamodb.StreamViewType.NEW_IMAGE,
    "NEW_AND_OLD_IMAGES": dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
}


_PROJECTIONS = {"ALL": dynamodb.ProjectionType.ALL, "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY}
_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attr(table_spec: spec.TableSpec, name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=_TYPES[table_spec.attribute_type(name)])


class Tables(Construct):
    """Every table of the resource specification, encrypted with one customer-managed key."""

    def __init__(self, scope: Construct, id: str, *, prefix: str, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "TablesKey",
            alias=f"alias/{prefix}powerx-agent/tables",
            description="PowerX Agent: DynamoDB tables (customer-managed)",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.by_name: dict[str, dynamodb.Table] = {}
        for table_spec in spec.TABLES:
            self.by_name[table_spec.name] = self._table(table_spec, prefix, removal_policy)

    def _table(self, table_spec: spec.TableSpec, prefix: str, removal_policy: RemovalPolicy) -> dynamodb.Table:
        logical = "".join(part.capitalize() for part in table_spec.name.split("_"))
        table = dynamodb.Table(
            self,
            logical,
            table_name=f"{prefix}{table_spec.name}",
            partition_key=_attr(table_spec, table_spec.partition_key),
            sort_key=_attr(table_spec, table_spec.sort_key) if table_spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=table_spec.ttl_attribute,
            stream=_STREAMS[table_spec.stream] if table_spec.stream else None,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        for index in table_spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attr(table_spec, index.partition_key),
                sort_key=_attr(table_spec, index.sort_key) if index.sort_key else None,
                projection_type=_PROJECTIONS[index.projection],
            )
        return table
