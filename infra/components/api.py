"""API Gateway REST API: ``spec.API_ROUTES`` as Lambda proxy integrations, access logs, throttling, tracing.

Requests are authenticated by the functions, one key set per purpose: replays are HMAC-signed by a named
caller with its own keys (the replay secret), callbacks come through a URL the engine signed for that one
callback (the callback secret). The methods therefore use no API Gateway authorizer; see the cdk-nag
suppressions below.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.components.nag import acknowledge
from powerx_agent import spec

_SIGNED = (
    "Internal endpoints authenticate every request in the function: a replay carries an HMAC signature over "
    "the body and a timestamp by a named caller (its own rotating keys, its own tenants; replay protection "
    "included); a callback comes through a URL the engine signed for that one callback id with an expiry. "
    "Callers (plugin runtime, ops service, operators' CLI) hold no AWS or Cognito identity."
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        functions: dict[str, lambda_.IFunction],  # the live aliases: integrations invoke them
        log_retention: logs.RetentionDays,
        throttle_rate: int,
        throttle_burst: int,
    ) -> None:
        super().__init__(scope, id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{prefix}{constants.API_NAME}",
            description="PowerX Agent internal API: signed manual replay and task callbacks",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigateway.StageOptions(
                stage_name=constants.API_STAGE,
                tracing_enabled=True,
                logging_level=apigateway.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
                metrics_enabled=True,
                throttling_rate_limit=throttle_rate,
                throttling_burst_limit=throttle_burst,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        # API Gateway writes execution logs (logging_level INFO) to a group it would create on its own, kept
        # forever; the stack creates that group first, with the same retention as every other log group
        self.execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{constants.API_STAGE}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api.deployment_stage.node.add_dependency(self.execution_logs)
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        json_object = self.api.add_model(
            "JsonObject",
            content_type="application/json",
            schema=apigateway.JsonSchema(schema=apigateway.JsonSchemaVersion.DRAFT4, type=apigateway.JsonSchemaType.OBJECT),
        )
        for key, (method, path) in spec.API_ROUTES.items():
            resource = self.api.root.resource_for_path(path)
            resource.add_method(
                method,
                apigateway.LambdaIntegration(functions[key], proxy=True),
                request_validator=validator,
                request_models={"application/json": json_object},
            )
        self._acknowledge()

    def _acknowledge(self) -> None:
        acknowledge(self.api, "AwsSolutions-APIG4", _SIGNED)
        acknowledge(self.api, "AwsSolutions-COG4", _SIGNED)
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "Two internal POST routes behind HMAC signatures and stage throttling; attach a WAF web ACL to "
            "the stage where the organisation mandates one (docs/deploy.md).",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The API Gateway account role for CloudWatch execution logs uses the AWS-managed "
            "AmazonAPIGatewayPushToCloudWatchLogs policy, the documented setup.",
        )

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def callbacks_url(self) -> str:
        """The callbacks route's URL, built from the API id and stage name only (not the Stage resource,
        which depends on every integration) so functions can carry it without a dependency cycle."""
        stack = Stack.of(self)
        path = spec.API_ROUTES["callbacks_api"][1]
        return (f"https://{self.api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}/"
                f"{constants.API_STAGE}{path}")
