"""Who may call the internal endpoints, and for what: one key set per purpose.

**Replay** (``POST /internal/agent/events``): each caller has its own keys and its own tenants, in
the replay secret ``{"callers": {"<caller>": {"tenants": ["acme"] | ["*"], "active": "k1", "k1":
"...", "k2": "..."}}}``. The caller names itself in ``X-PowerX-Caller``, signs ``timestamp + "." +
body`` with one of its active keys, and sends ``X-PowerX-Timestamp: <unix seconds>`` and
``X-PowerX-Signature: v1=<hex>``. Requests outside the time window are refused, so a captured
request cannot be replayed later; an event for a tenant the caller does not hold is refused (403).

**Callbacks** (``POST /internal/agent/callbacks``): no caller holds a key. The engine hands each
plugin call (and each manual-review work order) a *callback URL* signed for that one callback id
and an expiry, with the callback secret (``{"active": "k1", "k1": "...", "k2": "..."}``) that only
the engine reads. A plugin can therefore answer its own call and nothing else.

Both secrets keep two keys so they rotate without downtime (see docs/runbook.md); comparisons are
constant-time; the signed messages of the two purposes cannot be confused (distinct prefixes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

TIMESTAMP_HEADER = "X-PowerX-Timestamp"
SIGNATURE_HEADER = "X-PowerX-Signature"
CALLER_HEADER = "X-PowerX-Caller"
# ASCII only: str.isdigit() also accepts '²' and other Unicode digits, which int() then refuses
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=[0-9a-f]{64}")
CALLER_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CALLBACK_ID = re.compile(r"(cb-[0-9a-f]{24}|rv-[0-9a-f]{20})")
_CALLBACK_PURPOSE = b"powerx-callback|"


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """A replay caller: its id, the tenants it may act for (``*`` = all) and its active keys."""

    caller_id: str
    tenants: tuple[str, ...]
    keys: tuple[str, ...]

    def may_act_for(self, tenant_id: str) -> bool:
        return "*" in self.tenants or tenant_id in self.tenants


# ------------------------------------------------------------------------------------------------
# replay: signed requests
# ------------------------------------------------------------------------------------------------

def sign(key: str | bytes, timestamp: str, body: bytes) -> str:
    secret = key.encode() if isinstance(key, str) else key
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signed_headers(key: str | bytes, body: bytes, now: float | None = None, caller: str | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key, timestamp, body),
               "Content-Type": "application/json"}
    if caller is not None:
        headers[CALLER_HEADER] = caller
    return headers


def verify(headers: Mapping[str, str], body: bytes, keys: Iterable[str], window_seconds: float,
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
        raise SignatureError("signature.invalid", "the signature does not match any active key of this caller")


def verify_caller(headers: Mapping[str, str], body: bytes, callers: Mapping[str, Caller], window_seconds: float,
                  now: float | None = None) -> Caller:
    """The authenticated replay caller, or :class:`SignatureError` (``signature.unknown_caller`` when
    ``X-PowerX-Caller`` is missing or names no caller of the replay secret)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if not lowered.get(TIMESTAMP_HEADER.lower()) or not lowered.get(SIGNATURE_HEADER.lower()):
        raise SignatureError("signature.missing", f"{TIMESTAMP_HEADER}, {SIGNATURE_HEADER} and {CALLER_HEADER} "
                             "headers are required")
    caller_id = lowered.get(CALLER_HEADER.lower()) or ""
    caller = callers.get(caller_id) if CALLER_RE.fullmatch(caller_id) else None
    if caller is None:
        raise SignatureError("signature.unknown_caller",
                             f"{CALLER_HEADER} must name a caller of the replay secret (each caller has its own keys)")
    verify(headers, body, caller.keys, window_seconds, now)
    return caller


# ------------------------------------------------------------------------------------------------
# callbacks: URLs signed for one callback id and an expiry
# ------------------------------------------------------------------------------------------------

def _callback_signature(key: str, callback_id: str, expires: int) -> str:
    message = _CALLBACK_PURPOSE + f"{callback_id}|{expires}".encode()
    return "v1=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def callback_url(base_url: str, key: str, callback_id: str, expires: int) -> str:
    """The URL a plugin (or the ops service) POSTs its answer to: valid for this id until ``expires``."""
    query = urlencode({"id": callback_id, "expires": str(expires),
                       "signature": _callback_signature(key, callback_id, expires)})
    return f"{base_url.rstrip('/')}?{query}"


def verify_callback(query: Mapping[str, str] | None, keys: Iterable[str], now: float | None = None) -> str:
    """The callback or review id a signed callback URL grants, or :class:`SignatureError`."""
    query = query or {}
    callback_id, expires, signature = query.get("id"), query.get("expires"), query.get("signature")
    if not callback_id or not expires or not signature:
        raise SignatureError("signature.missing", "answer through the callback URL you were given: it carries "
                             "id, expires and signature (the engine signs one URL per callback)")
    if not _CALLBACK_ID.fullmatch(callback_id):
        raise SignatureError("signature.invalid", "the callback URL names no callback or review id")
    if not _TIMESTAMP.fullmatch(expires):
        raise SignatureError("signature.bad_timestamp", "expires must be unix seconds (1 to 12 ASCII digits)")
    if not _SIGNATURE.fullmatch(signature):
        raise SignatureError("signature.invalid", "signature must be v1= and 64 lowercase hex digits")
    if int(expires) < (now if now is not None else time.time()):
        raise SignatureError("signature.expired", "this callback URL has expired")
    matched = False
    for key in keys:
        if key and hmac.compare_digest(_callback_signature(key, callback_id, int(expires)), signature):
            matched = True
    if not matched:
        raise SignatureError("signature.invalid", "the callback URL's signature does not match")
    return callback_id
