"""boto3 clients, created once per process and reused (a client costs ~5 ms to build), all from one
boto3 session, so botocore loads its data files once per process and not once per client (about
80 ms less for a cold start that builds three clients).

``AWS_ENDPOINT_URL`` points every client at the embedded moto server locally; on AWS it is unset.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

from powerx_agent.settings import Env

_lock = threading.Lock()  # also serialises client creation, which a boto3 session does not make thread safe
_clients: dict[tuple[str, str, str | None], Any] = {}
_session: list[Any] = []

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},  # bounded, with botocore's jittered backoff
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=32,
)
# Feature flags are read on the path of every invocation: a slow or unreachable AppConfig must cost
# seconds at most, after which the last known flags serve (adapters/flags.py, ResilientStore).
_SERVICE_CONFIG = {
    "appconfigdata": _CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 2},
                                          connect_timeout=1, read_timeout=2)),
}


def _config(service: str) -> Config:
    config = _SERVICE_CONFIG.get(service, _CONFIG)
    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")  # the standard AWS setting wins over our default
    if attempts.isdigit() and int(attempts) > 0:
        config = config.merge(Config(retries={"mode": "standard", "max_attempts": int(attempts)}))
    return config


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    key = (service, region, endpoint_url)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            if not _session:
                _session.append(boto3.session.Session())
            found = _session[0].client(
                service, region_name=region, endpoint_url=endpoint_url, config=_config(service)
            )
            _clients[key] = found
        return found


def reset_clients() -> None:
    """Forget cached clients (the embedded runtime calls this when it restarts on a new port)."""
    with _lock:
        _clients.clear()
        _session.clear()  # credentials and endpoints may have changed with the environment


def is_aws_error(exc: BaseException) -> bool:
    """Whether an exception came from an AWS call (botocore/boto3), as opposed to our own code."""
    return type(exc).__module__.startswith(("botocore", "boto3"))


def error_code(exc: BaseException) -> str:
    """The botocore error code of a failed call ("" if none): read in ``adapters/`` only, where each
    code is turned into a result or a typed error."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def failure(exc: BaseException) -> tuple[str, str] | None:
    """What kind of failure an exception from an AWS or HTTP call is, and its text, for the command
    line's one-line answer; ``None`` when it is not one (our own errors, a bug).

    Kinds: ``credentials``, ``region``, ``profile`` (the target cannot be used as given),
    ``unreachable``, ``timeout``, ``refused`` (AWS answered with an error), ``client``, ``http``."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return "credentials", str(exc)
    if isinstance(exc, bx.NoRegionError):
        return "region", str(exc)
    if isinstance(exc, bx.ProfileNotFound):
        return "profile", str(exc)
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url") or os.environ.get(Env.AWS_ENDPOINT_URL) or "AWS"
        return "unreachable", f"{endpoint}: {type(exc).__name__}"
    if isinstance(exc, bx.ReadTimeoutError):
        return "timeout", str(getattr(exc, "kwargs", {}).get("endpoint_url") or "AWS")
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "a call")
        return "refused", f"{operation}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, bx.BotoCoreError):
        return "client", str(exc)
    import requests

    if isinstance(exc, requests.RequestException):
        return "http", f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


def caller_arn(sts: Any) -> str:
    """The ARN of the identity the credentials belong to (GetCallerIdentity needs no permission)."""
    return str(sts.get_caller_identity()["Arn"])
