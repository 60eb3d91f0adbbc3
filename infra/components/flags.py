"""AppConfig: application, environment, the feature-flag profile (every flag on) and its deployment.

The profile is **Freeform** and holds Powertools' feature-flag document as JSON
(``spec.feature_flags_document()``): ``GetLatestConfiguration`` returns a Freeform profile's content as
stored, which is what Powertools ``AppConfigStore`` + ``FeatureFlags`` read. A profile of type
``AWS.AppConfig.FeatureFlags`` would be returned in AppConfig's retrieved form
(``{"<flag>": {"enabled": bool}}``), which Powertools cannot read (docs/operations.md, "Feature flags").
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration
from aws_cdk import aws_appconfig as appconfig
from constructs import Construct

from infra import constants
from powerx_agent import spec


class Flags(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, environment_name: str) -> None:
        super().__init__(scope, id)
        self.application = appconfig.Application(
            self,
            "Application",
            application_name=f"{prefix}{constants.APPCONFIG_APPLICATION}",
            description="PowerX Agent feature flags",
        )
        self.environment = appconfig.Environment(
            self, "Environment", application=self.application, environment_name=environment_name
        )
        self.strategy = appconfig.DeploymentStrategy(
            self,
            "DeploymentStrategy",
            deployment_strategy_name=f"{prefix}powerx-agent-linear",
            rollout_strategy=appconfig.RolloutStrategy.linear(
                growth_factor=50, deployment_duration=Duration.minutes(2), final_bake_time=Duration.minutes(2)
            ),
        )
        self.profile = appconfig.HostedConfiguration(
            self,
            "FeatureFlags",
            application=self.application,
            name=constants.APPCONFIG_PROFILE,
            type=appconfig.ConfigurationType.FREEFORM,
            content=appconfig.ConfigurationContent.from_inline(json.dumps(spec.feature_flags_document()),
                                                               spec.FLAGS_CONTENT_TYPE),
            deployment_strategy=self.strategy,
            deploy_to=[self.environment],
        )

    @property
    def configuration_arn(self) -> str:
        """The ARN that appconfig:StartConfigurationSession / GetLatestConfiguration are granted on."""
        return (
            f"arn:{Aws.PARTITION}:appconfig:{Aws.REGION}:{Aws.ACCOUNT_ID}:application/"
            f"{self.application.application_id}/environment/{self.environment.environment_id}/"
            f"configuration/{self.profile.configuration_profile_id}"
        )
