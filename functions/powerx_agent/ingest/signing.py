"""HMAC-SHA256 request signatures for the internal endpoints (replay, callbacks).

The caller signs ``timestamp + "." + body`` with one of the active keys and sends
``X-PowerX-Timestamp: <unix seconds>`` and ``X-PowerX-Signature: v1=<hex>``. Two keys are active at
once so keys can be rotated without downtime; comparison is constant-time; requests outside the
time window are refused so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-PowerX-Timestamp"
SIGNATURE_HEADER = "X-PowerX-Signature"
# ASCII only: str.isdigit() also accepts '²' and other Unicode digits, which int() then refuses
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=[0-9a-f]{64}")


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sign(key: str | bytes, timestamp: str, body: bytes) -> str:
    secret = key.encode() if isinstance(key, str) else key
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signed_headers(key: str | bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key, timestamp, body),
            "Content-Type": "application/json"}


def verify(headers: dict[str, str], body: bytes, keys: Iterable[str], window_seconds: float,
           now: float | None = None) -> None:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if not timestamp or not signature:
        raise SignatureError("signature.missing", f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("signature.bad_timestamp",
                             f"{TIMESTAMP_HEADER} must be unix seconds (1 to 12 ASCII digits)")
    if not _SIGNATURE.fullmatch(signature):
        raise SignatureError("signature.invalid", f"{SIGNATURE_HEADER} must be v1= and 64 lowercase hex digits")
    current = now if now is not None else time.time()
    if abs(current - int(timestamp)) > window_seconds:
        raise SignatureError("signature.expired",
                             f"the request timestamp is outside the {int(window_seconds)} s window")
    matched = False
    for key in keys:
        if key and hmac.compare_digest(sign(key, timestamp, body), signature):
            matched = True
    if not matched:
        raise SignatureError("signature.invalid", "the signature does not match any active key")
