"""Showing and changing feature flags (``powerx-agent flags show|set``), audited.

Every change appends ``flag.changed`` to the chain ``OPS#flags`` (who, from, to, which store); when that
record cannot be written the flags are written back as they were (``flag.change_failed``).
The store is the one the functions read: the ``FLAGS / CURRENT`` item of ``agent_strategies`` on
the embedded runtime, AppConfig (a new hosted configuration version + a deployment) on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError
from powerx_agent.ops.change import Change

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

FLAGS_CHAIN = "OPS#flags"


def writer(deps: Deps) -> Any:
    from powerx_agent.adapters.flags import AppConfigFlagWriter, DynamoFlagWriter

    if deps.settings.flags_store == "appconfig":
        return AppConfigFlagWriter.from_deps(deps)
    return DynamoFlagWriter(deps.strategies)


def _is_on(definition: Any) -> bool:
    return bool(definition.get("default", True)) if isinstance(definition, dict) else bool(definition)


def show(deps: Deps, store: Any = None) -> list[dict[str, Any]]:
    """Each known flag as the functions read it (``on``: its default) and whether rules refine it."""
    deployed = (store or writer(deps)).deployed()
    rows = []
    for name in spec.FEATURE_FLAGS:
        definition = deployed.get(name, {"default": True})
        rows.append({"name": name, "on": _is_on(definition),
                     "rules": sorted((definition.get("rules") or {}) if isinstance(definition, dict) else {})})
    return rows


def status(deps: Deps, store: Any = None) -> dict[str, Any]:
    """Where the flags live and, on AppConfig, the latest deployment (number, version, state, percent)."""
    return (store or writer(deps)).status()


@dataclass(frozen=True)
class FlagChange:
    name: str
    before: bool
    after: bool
    by: str
    result: dict[str, Any]
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.name, "from": "on" if self.before else "off", "to": "on" if self.after else "off",
                "by": self.by, **self.result, "audit": f"{FLAGS_CHAIN}#{self.audit_seq}"}


def set_flag(deps: Deps, name: str, on: bool, by: str, store: Any = None) -> FlagChange:
    if name not in spec.FEATURE_FLAGS:
        raise AgentError(f"unknown feature flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}",
                         code="flags.unknown")
    store = store or writer(deps)
    current = store.current()
    definition = current.get(name, {"default": True})
    before = _is_on(definition)
    updated = dict(definition) if isinstance(definition, dict) else {}
    updated["default"] = on
    flags = {**current, name: updated}
    description = f"{name} {'on' if on else 'off'} by {by}"
    change_data = {"flag": name, "from": "on" if before else "off", "to": "on" if on else "off", "by": by}
    with Change(f"set {name} {'on' if on else 'off'}", "flags.set_failed",
                on_failure=lambda d: deps.audit.append(AuditEntry("flag.change_failed", FLAGS_CHAIN, status="FAILED",
                                                                  data={**change_data, **d}))) as change:
        result = change.step("write", lambda: store.write(flags, description),
                             lambda _: store.write(current, f"{name} put back: the change by {by} failed"))
        record = change.step("audit", lambda: deps.audit.append(AuditEntry(
            "flag.changed", FLAGS_CHAIN, status="ON" if on else "OFF", data={**change_data, **result})))
    deps.flags.invalidate()
    return FlagChange(name, before, on, by, result, int(record["seq"]))
