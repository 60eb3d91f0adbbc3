"""Every state machine the matcher creates logs and traces, and keeps doing so when the settings change.

moto stores a state machine's logging and tracing configuration and describes it back (it writes no
log records: what the records look like is tested from AWS's own, tests/integration/test_express_history.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from helpers import detail, send

from powerx_agent import spec
from powerx_agent.adapters.state_machines import StateMachines, observability
from powerx_agent.deps import get_deps
from powerx_agent.strategy.library import library_from_directory
from powerx_agent.taskflow.asl import FunctionArns, compile_flow


def _describe(rt: Any, arn: str) -> dict[str, Any]:
    return rt.client("stepfunctions").describe_state_machine(stateMachineArn=arn)


def test_given_an_event_when_its_state_machine_is_created_then_it_logs_all_to_the_group_and_traces(rt, uid):
    workflow = send(rt, "plugin.job.completed", detail(uid))
    described = _describe(rt, workflow["state_machine_arn"])
    settings = get_deps().settings
    assert settings.state_machine_log_group == spec.STATE_MACHINE_LOG_GROUP
    assert described["loggingConfiguration"] == {
        "level": "ALL", "includeExecutionData": False,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": settings.state_machine_log_group_arn}}]}
    assert described["tracingConfiguration"] == {"enabled": True}


def test_given_other_logging_settings_when_an_existing_machine_is_met_then_it_is_updated_without_a_version(rt):
    deps = get_deps()
    compiled = library_from_directory(rt.strategies_dir, "test").get("ticket-on-job-failed")
    flow = compile_flow(compiled.strategy, FunctionArns(**deps.settings.function_arns))
    arn = deps.state_machines.ensure(flow)["state_machine_arn"]
    versions_before = _describe(rt, f"{arn}:1")["definition"]
    quieter = StateMachines(deps.client("stepfunctions"), replace(
        deps.settings, state_machine_log_level="ERROR", state_machine_log_execution_data=True,
        state_machine_tracing=False))
    try:
        quieter.ensure(flow)
        described = _describe(rt, arn)
        assert described["loggingConfiguration"]["level"] == "ERROR"
        assert described["loggingConfiguration"]["includeExecutionData"] is True
        assert described["tracingConfiguration"] == {"enabled": False}
        assert described["definition"] == versions_before  # same definition: nothing republished
    finally:
        deps.state_machines.ensure(flow)
    assert _describe(rt, arn)["loggingConfiguration"]["level"] == "ALL"


def test_given_logging_off_when_a_machine_is_created_then_it_is_configured_off_without_destinations():
    settings = replace(get_deps().settings, state_machine_log_level="OFF")
    assert observability(settings)["loggingConfiguration"] == {"level": "OFF",
                                                                           "includeExecutionData": False}
    unconfigured = replace(get_deps().settings, state_machine_log_group_arn="")
    assert observability(unconfigured)["loggingConfiguration"]["level"] == "OFF"
