"""Secrets Manager: the replay/callback signing keys (two, for rotation) and downstream credentials."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import acknowledge
from powerx_agent import spec

_ROTATION_REASON = (
    "Signing keys rotate at the application level: the secret holds two keys (k1, k2) and an 'active' "
    "pointer; operators rotate by putting a new version (docs/deploy.md) while verifiers accept both keys. "
    "Downstream credentials are issued by the downstream services and replaced by operators."
)


def _seed(scope: Construct, id: str, name: str) -> secretsmanager.Secret:
    return secretsmanager.Secret(
        scope,
        id,
        secret_name=name,
        description="Initial signing key material (copied into the signing-keys secret at creation)",
        generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        removal_policy=RemovalPolicy.DESTROY,
    )


class Secrets(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str) -> None:
        super().__init__(scope, id)
        # Secrets Manager generates one value per secret; two generated seeds give the signing secret
        # two independent keys via CloudFormation dynamic references (never in the template in clear).
        seed_k1 = _seed(self, "SigningSeedK1", f"{prefix}{spec.SIGNING_SECRET_NAME}/seed-k1")
        seed_k2 = _seed(self, "SigningSeedK2", f"{prefix}{spec.SIGNING_SECRET_NAME}/seed-k2")
        self.signing = secretsmanager.Secret(
            self,
            "SigningKeys",
            secret_name=f"{prefix}{spec.SIGNING_SECRET_NAME}",
            description="HMAC keys for signed replay and callback requests: {active, k1, k2}",
            secret_object_value={
                "active": SecretValue.unsafe_plain_text("k1"),
                "k1": SecretValue.secrets_manager(seed_k1.secret_arn),
                "k2": SecretValue.secrets_manager(seed_k2.secret_arn),
            },
        )
        self.downstream = secretsmanager.Secret(
            self,
            "DownstreamCredentials",
            secret_name=f"{prefix}{spec.DOWNSTREAM_SECRET_NAME}",
            description="Bearer token for the plugin runtime, notifications and ops APIs",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"scheme": "Bearer"}',
                generate_string_key="token",
                password_length=48,
                exclude_punctuation=True,
            ),
        )
        for secret in (seed_k1, seed_k2, self.signing, self.downstream):
            acknowledge(secret, "AwsSolutions-SMG4", _ROTATION_REASON)
