"""AWS's documented relations between settings, asserted on the synthesized template.

Read from the template (what `cdk deploy` would create), never from the spec alone, so a construct
that ignores the spec is caught too:

- an SQS queue that feeds a Lambda function: VisibilityTimeout >= 6 x the function's Timeout + the
  mapping's MaximumBatchingWindowInSeconds
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html);
- every asynchronous path keeps what it gives up on: rule targets have a DeadLetterConfig, a function
  that EventBridge invokes (asynchronously) has an EventInvokeConfig with an on-failure destination,
  an SQS queue a function consumes has a redrive policy, a stream mapping has an on-failure destination
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html,
  https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html);
- every log group has a retention, and nothing writes to a log group the stack did not create with
  one (Lambda's default group, API Gateway's execution-log group).
- the bus's two rules are complements: every source is routed by exactly one of them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conftest import ref_id as _ref_id
from powerx_agent import spec
from powerx_agent.strategy.pattern import compile_pattern


def test_given_sqs_mappings_when_read_from_the_template_then_visibility_is_at_least_six_timeouts_plus_window(synth):
    mappings = [m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
                if synth.resources[_ref_id(m["Properties"]["EventSourceArn"])]["Type"] == "AWS::SQS::Queue"]
    assert mappings, "the match queue feeds the matcher"
    for props in mappings:
        queue = synth.resources[_ref_id(props["EventSourceArn"])]["Properties"]
        function = synth.resources[synth.function_id(props["FunctionName"])]["Properties"]
        window = props.get("MaximumBatchingWindowInSeconds", 0)
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"] + window, (queue["QueueName"], function)
        # and the spec derives it so (not a number typed twice)
        assert queue["VisibilityTimeout"] == spec.sqs_visibility_timeout(function["Timeout"], window)


def test_given_queues_consumed_by_functions_when_read_then_each_redrives_to_a_dead_letter_queue(synth):
    for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        source = synth.resources[_ref_id(mapping["Properties"]["EventSourceArn"])]
        if source["Type"] == "AWS::SQS::Queue":
            redrive = source["Properties"]["RedrivePolicy"]
            assert redrive["maxReceiveCount"] >= 5  # AWS: at least 5, so throttled receives do not dead-letter
            assert synth.resources[_ref_id(redrive["deadLetterTargetArn"])]["Type"] == "AWS::SQS::Queue"


def test_given_stream_mappings_when_read_then_each_has_an_on_failure_destination_and_bounded_retries(synth):
    streams = [m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
               if "StartingPosition" in m["Properties"]]
    assert streams, "the audit table's stream feeds audit_stream"
    for props in streams:
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert synth.resources[_ref_id(destination)]["Type"] == "AWS::SQS::Queue"
        assert 0 <= props["MaximumRetryAttempts"] < 10_000  # -1 (the default) would retry until the record expires
        assert props["BisectBatchOnFunctionError"] is True


def test_given_the_stream_destination_when_granted_then_the_function_may_send_to_it_and_nothing_more(synth):
    from conftest import role_statements

    (props,) = [m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
                if "StartingPosition" in m["Properties"]]
    function = synth.resources[synth.function_id(props["FunctionName"])]["Properties"]
    queue_id = _ref_id(props["DestinationConfig"]["OnFailure"]["Destination"])
    sqs = [s for s in role_statements(synth, _ref_id(function["Role"])) if any(a.startswith("sqs:") for a in s[0])]
    queue_name = synth.resources[queue_id]["Properties"]["QueueName"]
    assert sqs == [(("sqs:SendMessage",), (f"arn(queue:{queue_name})",), None)]


def _bus_rules(synth) -> dict[str, dict]:
    """The event rules (schedules aside: see the schedule test below)."""
    return {k: r for k, r in synth.of_type("AWS::Events::Rule").items() if "ScheduleExpression" not in r["Properties"]}


def test_given_rules_when_read_then_every_target_has_a_dead_letter_queue_and_a_retry_policy(synth):
    rules = _bus_rules(synth)
    assert len(rules) == len(spec.RULES)
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert synth.resources[_ref_id(target["DeadLetterConfig"]["Arn"])]["Type"] == "AWS::SQS::Queue"
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_given_functions_eventbridge_invokes_when_read_then_their_async_invocations_have_an_on_failure_destination(
        synth):
    configs = [c["Properties"] for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()]
    invoked = []
    for rule in _bus_rules(synth).values():
        for target in rule["Properties"]["Targets"]:
            if synth.resources[_ref_id(target["Arn"])]["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::Alias"):
                invoked.append(target["Arn"])
    assert invoked, "the ingest rule invokes the ingest function"
    for arn in invoked:
        function = synth.function_id(arn)
        qualifier = synth.resources[_ref_id(arn)]["Properties"].get("Name", "$LATEST") \
            if synth.resources[_ref_id(arn)]["Type"] == "AWS::Lambda::Alias" else "$LATEST"
        (config,) = [c for c in configs if synth.function_id(c["FunctionName"]) == function]
        assert config["Qualifier"] == qualifier  # the qualifier the rule invokes, not another one
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]
        assert synth.resources[_ref_id(destination)]["Type"] == "AWS::SQS::Queue"


def test_given_schedules_when_read_then_a_missed_run_is_superseded_not_kept_and_its_absence_is_alarmed(synth):
    """A schedule measures a level every minute: a run EventBridge or Lambda could not make is not worth
    keeping in a DLQ or retrying for hours (the next minute measures afresh and the value is dated by the
    scheduled minute), so retries are few and short-lived instead; a sustained failure shows as the gauge
    missing, which has its own alarm."""
    schedules = {k: r["Properties"] for k, r in synth.of_type("AWS::Events::Rule").items()
                 if "ScheduleExpression" in r["Properties"]}
    assert {p["Name"]: p["ScheduleExpression"] for p in schedules.values()} == {
        s.name: s.expression for s in spec.SCHEDULES}
    for props in schedules.values():
        (target,) = props["Targets"]
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}
        assert synth.invokes_alias(target["Arn"], spec.LIVE_ALIAS)
        function = synth.function_id(target["Arn"])
        (config,) = [c["Properties"] for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
                     if synth.function_id(c["Properties"]["FunctionName"]) == function]
        assert config["MaximumRetryAttempts"] == 0 and config["MaximumEventAgeInSeconds"] == 60
        assert config["Qualifier"] == spec.LIVE_ALIAS
    alarms = {a["Properties"]["AlarmName"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()}
    assert "powerx-agent-review-backlog-gauge-missing" in alarms


def test_given_log_groups_when_read_then_every_one_has_a_retention(synth):
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert groups
    missing = [k for k, g in groups.items() if not g["Properties"].get("RetentionInDays")]
    assert not missing


def test_given_functions_when_read_then_each_logs_to_a_log_group_the_stack_created(synth):
    # without LoggingConfig.LogGroup, Lambda creates /aws/lambda/<name> on first run, kept forever
    for logical, function in synth.of_type("AWS::Lambda::Function").items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert synth.resources[_ref_id(group)]["Type"] == "AWS::Logs::LogGroup", logical


def test_given_api_execution_logging_when_read_then_the_stack_owns_the_execution_log_group(synth):
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "INFO"
    names = [g["Properties"].get("LogGroupName") for g in synth.of_type("AWS::Logs::LogGroup").values()]
    execution = [n for n in names if isinstance(n, dict) and "API-Gateway-Execution-Logs_" in str(n)]
    assert len(execution) == 1
    assert stage.get("DependsOn") and any(
        synth.resources[d]["Type"] == "AWS::Logs::LogGroup" for d in stage["DependsOn"])


# -- routing: the ingest rule and the unrouted rule are complements ------------------------------------
_INGEST = compile_pattern(spec.INGEST_RULE.pattern)
_UNROUTED = compile_pattern(spec.UNROUTED_RULE.pattern)


def _event(source: str) -> dict[str, Any]:
    return {"source": source, "detail-type": "x", "detail": {}}


def test_given_the_template_rules_when_read_then_they_are_the_spec_patterns(synth):
    patterns = {r["Properties"]["Name"]: r["Properties"]["EventPattern"] for r in _bus_rules(synth).values()}
    assert patterns == {r.name: r.pattern for r in spec.RULES}


@given(st.one_of(st.sampled_from(spec.EVENT_SOURCES), st.text(min_size=1, max_size=64)))
def test_given_any_source_when_matched_then_exactly_one_rule_routes_it(source):
    # EventBridge's own matching semantics (strategy/pattern.py, checked against the event-ruler corpus)
    assert _INGEST.matches(_event(source)) != _UNROUTED.matches(_event(source))
    assert _INGEST.matches(_event(source)) == (source in spec.EVENT_SOURCES)
