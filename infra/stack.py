"""The PowerX Agent stack: every capability wired together (README.md, "How an event flows")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.components.api import Api
from infra.components.audit import Audit
from infra.components.event_sources import EventSources
from infra.components.events import Events
from infra.components.flags import Flags
from infra.components.functions import Downstream, Functions
from infra.components.observability import UNROUTED_PERIOD, Observability
from infra.components.queues import Queues
from infra.components.secrets import Secrets
from infra.components.tables import Tables
from infra.components.workflow import Logging, Workflow
from powerx_agent import spec
from powerx_agent.settings import Env

_RETENTION_DAYS = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def _flag(value: Any) -> bool:
    """A boolean context value (cdk.json true/false, or `-c key=false` as a string)."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def _retention(days: int) -> logs.RetentionDays:
    if days in _RETENTION_DAYS:
        return logs.RetentionDays[_RETENTION_DAYS[days]]
    raise ValueError(f"{days} is not a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, ... days)")


class PowerXAgentStack(Stack):
    def __init__(self, scope: Construct, id: str, *, layer_dir: Path, **kwargs: Any) -> None:
        super().__init__(scope, id, description="PowerX Agent Taskflow: event-driven automation engine", **kwargs)
        ctx = self._context
        prefix = str(ctx("resourcePrefix"))
        removal = RemovalPolicy.DESTROY if ctx("removalPolicy") == "destroy" else RemovalPolicy.RETAIN
        log_retention = _retention(int(ctx("logRetentionDays")))

        tables = Tables(self, "Tables", prefix=prefix, removal_policy=removal)
        queues = Queues(self, "Queues", prefix=prefix)
        secrets = Secrets(self, "Secrets", prefix=prefix)
        flags = Flags(self, "Flags", prefix=prefix, environment_name=str(ctx("environmentName")))
        audit = Audit(
            self, "Audit", prefix=prefix, retention=_retention(int(ctx("auditLogRetentionDays"))),
            removal_policy=removal,
        )
        events = Events(self, "Events", prefix=prefix, archive_retention_days=int(ctx("archiveRetentionDays")))
        workflow = Workflow(
            self, "Workflow", prefix=prefix, removal_policy=removal,
            logging=Logging(level=str(ctx("stateMachineLogLevel")).upper(),
                            include_execution_data=_flag(ctx("stateMachineLogExecutionData")),
                            tracing=_flag(ctx("stateMachineTracing")), retention=log_retention),
        )
        functions = Functions(
            self,
            "Functions",
            prefix=prefix,
            layer_dir=layer_dir,
            tables=tables,
            queues=queues,
            secrets=secrets,
            flags=flags,
            audit=audit,
            workflow=workflow,
            event_bus_name=events.bus.event_bus_name,
            event_bus_arn=events.bus.event_bus_arn,
            downstream=Downstream(
                plugin_runtime_url=str(ctx("pluginRuntimeUrl")),
                notifications_url=str(ctx("notificationsUrl")),
                ops_url=str(ctx("opsUrl")),
            ),
            log_retention=log_retention,
            idempotency_expiry_seconds=int(ctx("idempotencyExpirySeconds")),
            reserved_concurrency={k: int(v) for k, v in dict(ctx("reservedConcurrency") or {}).items()},
        )
        EventSources(self, "EventSources", functions=functions, queues=queues, tables=tables)
        events.route_to_ingest(functions.aliases["ingest"], queues.ingest_dlq)
        for schedule in spec.SCHEDULES:
            events.schedule(schedule, functions.aliases[schedule.target_function])
        events.keep_unrouted(queues.by_name[spec.UNROUTED_QUEUE.name], queues.ingest_dlq)
        api = Api(
            self,
            "Api",
            prefix=prefix,
            functions=functions.aliases,
            log_retention=log_retention,
            throttle_rate=int(ctx("apiThrottleRate")),
            throttle_burst=int(ctx("apiThrottleBurst")),
        )
        for key in constants.SIGNS_CALLBACK_URLS:  # the callback URL handed out, signed per call
            functions.by_key[key].add_environment(str(Env.CALLBACKS_URL), api.callbacks_url)
        subscriptions = ctx("alarmSubscriptions") or []
        if isinstance(subscriptions, str):
            subscriptions = [s for s in subscriptions.split(",") if s]
        observability = Observability(
            self,
            "Observability",
            prefix=prefix,
            alarm_email=str(ctx("alarmEmail") or ""),
            alarm_subscriptions=subscriptions,
            pagerduty_url=str(ctx("pagerDutyIntegrationUrl") or ""),
            slack_workspace_id=str(ctx("slackWorkspaceId") or ""),
            slack_channel_id=str(ctx("slackChannelId") or ""),
            removal_policy=removal,
        )
        for alarm in queues.dlq_alarms.values():
            observability.notify(alarm)
        observability.unrouted_events_alarm(events.unrouted_metric(UNROUTED_PERIOD))
        dashboard = observability.dashboard(
            dlqs={name: queues.by_name[name] for name in queues.dlq_alarms},
            audit_log_group_name=audit.log_group_name,
            unrouted=events.unrouted_metric(UNROUTED_PERIOD),
        )

        self.tables, self.queues, self.secrets, self.flags = tables, queues, secrets, flags
        self.audit, self.events, self.workflow, self.functions = audit, events, workflow, functions
        self.api, self.observability, self.dashboard = api, observability, dashboard

        outputs = {
            "EventBusName": events.bus.event_bus_name,
            "EventBusArn": events.bus.event_bus_arn,
            "ArchiveName": events.archive.archive_name,
            "ApiUrl": api.url,
            "MatchQueueUrl": queues.match.queue_url,
            "IngestDlqUrl": queues.ingest_dlq.queue_url,
            "UnroutedQueueUrl": queues.by_name[spec.UNROUTED_QUEUE.name].queue_url,
            "AuditStreamDlqUrl": queues.by_name[spec.AUDIT_STREAM_DLQ.name].queue_url,
            "WorkflowRoleArn": workflow.role.role_arn,
            "StateMachinePrefix": f"{prefix}{spec.STATE_MACHINE_PREFIX}",
            "StateMachineLogGroupArn": workflow.log_group.log_group_arn,
            "Release": functions.release_id,
            "AlarmTopicArn": observability.topic.topic_arn,
            "DashboardName": f"{prefix}{constants.DASHBOARD_NAME}",
            "AuditLogGroup": audit.log_group.log_group_name,
            "ReplaySecretArn": secrets.replay.secret_arn,
            "CallbackSecretArn": secrets.callback.secret_arn,
            "CallbacksUrl": api.callbacks_url,
            "DownstreamSecretArn": secrets.downstream.secret_arn,
            "AppConfigApplication": flags.application.application_id,
            "AppConfigEnvironment": flags.environment.environment_id,
            "AppConfigProfile": flags.profile.configuration_profile_id,
            "AppConfigDeploymentStrategy": flags.strategy.deployment_strategy_id,
        }
        if prefix:  # CloudFormation outputs cannot be empty: no output means no prefix
            outputs["ResourcePrefix"] = prefix
        for table_name, env_name in constants.TABLE_ENV.items():
            outputs[env_name.title().replace("_", "")] = tables.by_name[table_name].table_name
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)

    def _context(self, key: str) -> Any:
        value = self.node.try_get_context(key)
        return constants.CONTEXT_DEFAULTS[key] if value is None else value
