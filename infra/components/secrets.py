"""Secrets Manager: one key set per purpose, and the downstream credentials.

- replay keys (``powerx/agent/replay-keys``): ``{"callers": {"<caller>": {"tenants": [...], "active",
  "k1", "k2"}}}``; the stack creates one caller, ``operator``, for every tenant (its two keys generated);
  ``powerx-agent keys add-caller`` adds callers scoped to their tenants.
- callback key (``powerx/agent/callback-keys``): ``{"active", "k1", "k2"}``, read only by the engine
  (it signs a callback URL per plugin call and per review work order; no plugin holds a key).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.nag import acknowledge
from powerx_agent import spec

REPLAY_OPERATOR = "operator"

_ROTATION_REASON = (
    "Signing keys rotate at the application level: each key set holds two keys (k1, k2) and an 'active' "
    "pointer; `powerx-agent keys rotate` writes a fresh key into the inactive slot while verifiers accept both "
    "(docs/runbook.md). Downstream credentials are issued by the downstream services and replaced by operators."
)


def _seed(scope: Construct, id: str, name: str) -> secretsmanager.Secret:
    return secretsmanager.Secret(
        scope,
        id,
        secret_name=name,
        description="Initial signing key material (copied into its key set at creation)",
        generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        removal_policy=RemovalPolicy.DESTROY,
    )


class Secrets(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str) -> None:
        super().__init__(scope, id)
        # Secrets Manager generates one value per secret; two generated seeds per key set give it two
        # independent keys via CloudFormation dynamic references (never in the template in clear).
        seeds = []
        for logical, name in (("Replay", spec.REPLAY_SECRET_NAME), ("Callback", spec.CALLBACK_SECRET_NAME)):
            for slot in ("k1", "k2"):
                seeds.append(_seed(self, f"{logical}Seed{slot.upper()}", f"{prefix}{name}/seed-{slot}"))
        replay_k1, replay_k2, callback_k1, callback_k2 = seeds
        # nested JSON cannot be a secret_object_value: the key set is a string around the two dynamic
        # references (resolved by CloudFormation at deploy time, never in the template in clear)
        k1 = SecretValue.secrets_manager(replay_k1.secret_arn).unsafe_unwrap()
        k2 = SecretValue.secrets_manager(replay_k2.secret_arn).unsafe_unwrap()
        self.replay = secretsmanager.Secret(
            self,
            "ReplayKeys",
            secret_name=f"{prefix}{spec.REPLAY_SECRET_NAME}",
            description="Replay callers, each with its own HMAC keys and the tenants it may replay",
            secret_string_value=SecretValue.unsafe_plain_text(
                '{"callers":{"' + REPLAY_OPERATOR + '":{"tenants":["*"],"active":"k1","k1":"' + k1
                + '","k2":"' + k2 + '"}}}'),
        )
        self.callback = secretsmanager.Secret(
            self,
            "CallbackKeys",
            secret_name=f"{prefix}{spec.CALLBACK_SECRET_NAME}",
            description="The engine's HMAC keys for callback URLs signed per call: {active, k1, k2}",
            secret_object_value={
                "active": SecretValue.unsafe_plain_text("k1"),
                "k1": SecretValue.secrets_manager(callback_k1.secret_arn),
                "k2": SecretValue.secrets_manager(callback_k2.secret_arn),
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
        for secret in (*seeds, self.replay, self.callback, self.downstream):
            acknowledge(secret, "AwsSolutions-SMG4", _ROTATION_REASON)
