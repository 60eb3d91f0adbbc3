"""Key administration: replay callers (each with its own keys and tenants) and the callback key.

Every change is a new version of the secret, read fresh (never from a cache), and audited in the
chain ``OPS#keys`` (who, what, which caller and slot; never a key). Zero-downtime rotation:

- **callback key** (``rotate_callback``): a fresh key goes into the inactive slot and becomes active.
  The engine signs new callback URLs with it at once; URLs already handed out were signed with the
  previous key, which stays in the other slot and keeps verifying until the next rotation. Rotate no
  more often than the longest-lived URL (a review's, 7 days).
- **a replay caller's key** (``rotate_caller``): a fresh key goes into the caller's inactive slot and
  becomes active; the previous key keeps verifying, so the caller switches whenever it is ready, then
  ``retire_previous`` removes the old key.

Verifiers re-read a secret (at most every 5 s) when a signature matches none of the cached keys, so
a new key is accepted within seconds. A removed key (``retire_previous``, ``remove_caller``) stops
working when the functions' secret cache expires: within 5 minutes.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError
from powerx_agent.ingest.envelope import TENANT_RE
from powerx_agent.signing import CALLER_RE

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

KEYS_CHAIN = "OPS#keys"
_TENANT = re.compile(TENANT_RE)


class KeyAdminError(AgentError):
    code = "keys.invalid"


def _read(deps: Deps, secret_id: str) -> dict[str, Any]:
    try:
        return deps.secrets.read_fresh(secret_id)
    except ValueError as exc:
        raise KeyAdminError(str(exc), code="keys.bad_secret") from None


def _write(deps: Deps, secret_id: str, value: dict[str, Any]) -> None:
    deps.secrets.put_json(secret_id, value)


def _audit(deps: Deps, kind: str, by: str, **data: Any) -> None:
    deps.audit.append(AuditEntry(kind, KEYS_CHAIN, status="CHANGED", data={"by": by, **data}))


def _slots(entry: dict[str, Any]) -> list[str]:
    return sorted(k for k in entry if k.startswith("k") and isinstance(entry.get(k), str) and entry[k])


def _rotate_slot(entry: dict[str, Any]) -> tuple[str, str]:
    """Write a fresh key into the slot that is not active and make it active: (new slot, new key)."""
    active = entry.get("active") if entry.get("active") in ("k1", "k2") else "k1"
    slot = "k2" if active == "k1" else "k1"
    key = secrets.token_hex(32)
    entry[slot] = key
    entry["active"] = slot
    return slot, key


def _check_tenants(tenants: list[str]) -> list[str]:
    if not tenants:
        raise KeyAdminError("give at least one tenant (or * for every tenant)", code="keys.no_tenants")
    for tenant in tenants:
        if tenant != "*" and not _TENANT.match(tenant):
            raise KeyAdminError(f"{tenant!r} is not a tenant id", code="keys.bad_tenant")
    return sorted(set(tenants))


def _callers(value: dict[str, Any]) -> dict[str, Any]:
    callers = value.setdefault("callers", {})
    if not isinstance(callers, dict):
        raise KeyAdminError("the replay secret's 'callers' is not an object", code="keys.bad_secret")
    return callers


def _caller(value: dict[str, Any], caller: str) -> dict[str, Any]:
    entry = _callers(value).get(caller)
    if not isinstance(entry, dict):
        raise KeyAdminError(f"no replay caller {caller!r}", code="keys.unknown_caller")
    return entry


def list_keys(deps: Deps) -> dict[str, Any]:
    """Callers, their tenants and key slots, and the callback key's slots; never a key."""
    replay = _read(deps, deps.settings.replay_secret)
    callback = _read(deps, deps.settings.callback_secret)
    return {
        "replay_callers": [{"caller": name, "tenants": entry.get("tenants", []), "active": entry.get("active"),
                            "slots": _slots(entry)} for name, entry in sorted(_callers(replay).items())
                           if isinstance(entry, dict)],
        "callback": {"active": callback.get("active"), "slots": _slots(callback)},
    }


def add_caller(deps: Deps, caller: str, tenants: list[str], by: str) -> str:
    """A new replay caller scoped to ``tenants``; returns its key (to hand to the caller once)."""
    if not CALLER_RE.fullmatch(caller):
        raise KeyAdminError(f"{caller!r} is not a caller name ([a-z0-9][a-z0-9._-]{{0,63}})", code="keys.bad_caller")
    scope = _check_tenants(tenants)
    value = _read(deps, deps.settings.replay_secret)
    if caller in _callers(value):
        raise KeyAdminError(f"replay caller {caller!r} exists; rotate its key or remove it first",
                            code="keys.caller_exists")
    key = secrets.token_hex(32)
    _callers(value)[caller] = {"tenants": scope, "active": "k1", "k1": key}
    _write(deps, deps.settings.replay_secret, value)
    _audit(deps, "keys.caller_added", by, caller=caller, tenants=scope)
    return key


def set_tenants(deps: Deps, caller: str, tenants: list[str], by: str) -> None:
    scope = _check_tenants(tenants)
    value = _read(deps, deps.settings.replay_secret)
    entry = _caller(value, caller)
    before = entry.get("tenants", [])
    entry["tenants"] = scope
    _write(deps, deps.settings.replay_secret, value)
    _audit(deps, "keys.caller_scoped", by, caller=caller, tenants=scope, previous_tenants=before)


def remove_caller(deps: Deps, caller: str, by: str) -> None:
    value = _read(deps, deps.settings.replay_secret)
    _caller(value, caller)
    del _callers(value)[caller]
    _write(deps, deps.settings.replay_secret, value)
    _audit(deps, "keys.caller_removed", by, caller=caller)


def rotate_caller(deps: Deps, caller: str, by: str) -> str:
    """A fresh active key for ``caller``; its previous key keeps verifying. Returns the new key."""
    value = _read(deps, deps.settings.replay_secret)
    slot, key = _rotate_slot(_caller(value, caller))
    _write(deps, deps.settings.replay_secret, value)
    _audit(deps, "keys.rotated", by, purpose="replay", caller=caller, active=slot)
    return key


def retire_previous(deps: Deps, caller: str, by: str) -> str:
    """Remove the caller's key that is not active (after the caller switched to the new one)."""
    value = _read(deps, deps.settings.replay_secret)
    entry = _caller(value, caller)
    old = [slot for slot in _slots(entry) if slot != entry.get("active")]
    if not old:
        raise KeyAdminError(f"replay caller {caller!r} has no previous key", code="keys.nothing_to_retire")
    for slot in old:
        del entry[slot]
    _write(deps, deps.settings.replay_secret, value)
    _audit(deps, "keys.retired", by, purpose="replay", caller=caller, slots=old)
    return ",".join(old)


def rotate_callback(deps: Deps, by: str) -> str:
    """A fresh active callback key; URLs signed with the previous one verify until the next rotation."""
    value = _read(deps, deps.settings.callback_secret)
    slot, _ = _rotate_slot(value)
    _write(deps, deps.settings.callback_secret, value)
    _audit(deps, "keys.rotated", by, purpose="callback", active=slot)
    return slot
