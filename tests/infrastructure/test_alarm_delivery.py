"""Where alarms go: e-mail, PagerDuty (an HTTPS subscription) and Slack (an AWS Chatbot channel
configuration), from context parameters. The Observability construct is synthesized on its own here
(a small stack), so each case is fast; the full stack passes the same context through (infra/stack.py)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from infra.components.observability import Observability

PAGERDUTY = "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue"


def synth(**kwargs: str) -> Template:
    app = cdk.App()
    stack = cdk.Stack(app, "AlarmsOnly", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    args = {"prefix": "", "alarm_email": "", "alarm_subscriptions": (), "pagerduty_url": "", "slack_workspace_id": "",
            "slack_channel_id": "", "removal_policy": cdk.RemovalPolicy.DESTROY, **kwargs}
    Observability(stack, "Observability", **args)
    return Template.from_stack(stack)


def test_given_no_context_when_synthesized_then_no_subscription_and_no_slack_channel():
    template = synth()
    template.resource_count_is("AWS::SNS::Subscription", 0)
    template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)


def test_given_a_pagerduty_url_when_synthesized_then_an_https_subscription_on_the_alarm_topic():
    template = synth(pagerduty_url=PAGERDUTY)
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "https", "Endpoint": PAGERDUTY, "TopicArn": {"Ref": topic}})
    template.resource_count_is("AWS::SNS::Subscription", 1)


def test_given_a_slack_workspace_and_channel_when_synthesized_then_a_chatbot_channel_on_the_alarm_topic():
    template = synth(slack_workspace_id="T0123ABCD", slack_channel_id="C0456EFGH")
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    template.has_resource_properties("AWS::Chatbot::SlackChannelConfiguration", {
        "ConfigurationName": "powerx-agent-alarms", "SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0456EFGH",
        "SnsTopicArns": [{"Ref": topic}], "LoggingLevel": "ERROR",
        "GuardrailPolicies": [Match.object_like({"Fn::Join": Match.array_with([
            Match.array_with([":iam::aws:policy/CloudWatchReadOnlyAccess"])])})],
        "IamRoleArn": Match.any_value()})
    # Chatbot subscribes itself to the topic; the stack adds no webhook subscription for Slack
    template.resource_count_is("AWS::SNS::Subscription", 0)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "chatbot.amazonaws.com"}


def test_given_the_encrypted_topic_when_synthesized_then_cloudwatch_may_publish_through_its_key():
    template = synth()
    template.has_resource_properties("AWS::KMS::Key", {"KeyPolicy": {"Statement": Match.array_with([
        Match.object_like({"Principal": {"Service": "cloudwatch.amazonaws.com"},
                           "Action": ["kms:Decrypt", "kms:GenerateDataKey*"]})])}})


@pytest.mark.parametrize("kwargs", [{"slack_workspace_id": "T0123ABCD"}, {"slack_channel_id": "C0456EFGH"},
                                    {"pagerduty_url": "http://events.pagerduty.com/integration/x/enqueue"},
                                    {"alarm_subscriptions": ("ftp://example.com",)}])
def test_given_incomplete_or_plain_http_context_when_synthesized_then_refused_with_the_reason(kwargs):
    with pytest.raises(ValueError, match="Slack needs both|HTTPS"):
        synth(**kwargs)
