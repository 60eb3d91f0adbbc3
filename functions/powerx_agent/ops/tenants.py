"""The tenant registry for operators: ``powerx-agent tenants apply | list | show | disable``.

A change is checked whole before anything is written: the file is validated (every problem at once),
the registry is read consistently and the diff computed. Writes go in DynamoDB transactions of at
most :data:`TENANTS_PER_TRANSACTION` tenants, each tenant item guarded by the revision that was read
and written together with its audit record (``tenant.created`` / ``tenant.changed`` /
``tenant.disabled`` in the chain ``OPS#tenants``): a tenant changes with its record or not at all,
and a concurrent change to the same tenant cancels the transaction instead of being overwritten.
When a change needs several transactions and one fails, the ones already committed are reverted
(``tenant.reverted``), so an apply ends all done or nothing done; only if the revert itself is
refused (someone changed those tenants meanwhile) does the error name the tenants left changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.records import AuditEntry, now_iso
from powerx_agent.errors import AgentError
from powerx_agent.tenant_registry import Change, diff, load_tenants

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

TENANTS_CHAIN = "OPS#tenants"
TENANTS_PER_TRANSACTION = 50  # each tenant is two actions (item + audit record); DynamoDB allows 100


class TenantsError(AgentError):
    code = "tenants.error"


@dataclass
class Plan:
    source: str
    changes: list[Change]
    not_in_file: list[str] = field(default_factory=list)  # registered tenants the file does not name (kept)

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0}
        for change in self.changes:
            out[change.action] += 1
        return out


@dataclass
class Applied:
    written: list[str]
    audit: list[str]  # OPS#tenants#<seq> of each record
    transactions: int


def plan(deps: Deps, path: Path) -> Plan:
    """Validate the file and compare it with the registry; nothing is written."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TenantsError(f"cannot read {path}: {exc.strerror or exc}", code="tenants.file") from None
    tenants = load_tenants(raw, str(path))
    current = {item["tenant_id"]: item for item in deps.tenants.scan()}
    named = {t.tenant_id for t in tenants}
    return Plan(str(path), diff(current, tenants), sorted(set(current) - named))


def _item(after: dict[str, Any], before: dict[str, Any] | None, by: str) -> dict[str, Any]:
    revision = int((before or {}).get("revision", 0)) + 1
    return {**after, "revision": revision, "updated_at": now_iso(), "updated_by": by}


def _entry(kind: str, tenant_id: str, item: dict[str, Any] | None, by: str, data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(kind, TENANTS_CHAIN, tenant_id=tenant_id,
                      status=(item or {}).get("status", "ABSENT").upper(),
                      data={"by": by, "revision": (item or {}).get("revision"), **data})


def _commit(deps: Deps, writes: list[tuple[dict[str, Any], dict[str, Any] | None, AuditEntry, bool]]) -> list[dict]:
    """One transaction: each (item to write, item read, audit entry, delete?) with its audit record."""
    records, audit_actions = deps.audit.transact_puts([w[2] for w in writes])
    actions = [deps.tenants.delete_action(read) if delete else deps.tenants.put_action(item, read)
               for item, read, _, delete in writes]
    deps.tenants.transact(actions + audit_actions, [w[2].tenant_id for w in writes])
    deps.audit.committed(records)
    return records


def _fields_text(fields: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {k: [old, new] for k, (old, new) in fields.items()}


def apply(deps: Deps, plan: Plan, by: str) -> Applied:
    """Write every create and update of ``plan`` (see the module doc for how it stays whole)."""
    writes = plan.writes
    done: list[list[tuple[dict[str, Any], dict[str, Any] | None]]] = []  # per committed transaction
    audit: list[str] = []
    for start in range(0, len(writes), TENANTS_PER_TRANSACTION):
        chunk = writes[start:start + TENANTS_PER_TRANSACTION]
        batch = []
        for change in chunk:
            item = _item(change.after, change.before, by)
            kind = "tenant.created" if change.action == "create" else "tenant.changed"
            data = {"source": Path(plan.source).name, "fields": _fields_text(change.fields)}
            batch.append((item, change.before, _entry(kind, change.tenant_id, item, by, data), False))
        try:
            records = _commit(deps, batch)
        except Exception as exc:  # noqa: BLE001 - any failure: undo what was committed, then report
            reverted, left = _revert(deps, done, by)
            cause = _cause(exc)
            if left:
                raise TenantsError(
                    f"writing tenants {', '.join(c.tenant_id for c in chunk)} failed ({cause}); reverting the "
                    f"{len(reverted)} tenant(s) already written was refused for {', '.join(left)} (changed "
                    "by someone else meanwhile): check them with `tenants show`", code="tenants.partial",
                    details={"failed": [c.tenant_id for c in chunk], "left_changed": left}) from exc
            undone = f"; the {len(reverted)} tenant(s) already written were reverted" if reverted else ""
            raise TenantsError(f"writing tenants {', '.join(c.tenant_id for c in chunk)} failed ({cause}): "
                               f"nothing was changed{undone}", code="tenants.not_applied") from exc
        done.append([(item, before) for item, before, _, _ in batch])
        audit += [f"{r['pk']}#{r['seq']}" for r in records]
    return Applied([c.tenant_id for c in writes], audit, len(done))


def _revert(deps: Deps, done: list[list[tuple[dict[str, Any], dict[str, Any] | None]]], by: str
            ) -> tuple[list[str], list[str]]:
    """Put back what each committed transaction replaced, newest first; returns (reverted, left changed)."""
    reverted: list[str] = []
    left: list[str] = []
    for batch in reversed(done):
        undo = []
        for written, before in batch:
            if before is None:
                undo.append((written, written, _entry("tenant.reverted", written["tenant_id"], None, by,
                                                      {"undoes_revision": written["revision"]}), True))
            else:
                restored = {**before, "revision": int(written["revision"]) + 1,
                            "updated_at": now_iso(), "updated_by": by}
                undo.append((restored, written, _entry("tenant.reverted", written["tenant_id"], restored, by,
                                                       {"undoes_revision": written["revision"]}), False))
        try:
            _commit(deps, undo)
            reverted += [w["tenant_id"] for w, _ in batch]
        except Exception:  # noqa: BLE001 - reported to the operator with the tenants concerned
            left += [w["tenant_id"] for w, _ in batch]
    return reverted, left


def _cause(exc: BaseException) -> str:
    return exc.message if isinstance(exc, AgentError) else f"{type(exc).__name__}: {str(exc)[:300]}"


def list_tenants(deps: Deps) -> list[dict[str, Any]]:
    return sorted(deps.tenants.scan(), key=lambda t: t["tenant_id"])


def show(deps: Deps, tenant_id: str) -> dict[str, Any]:
    item = deps.tenants.read(tenant_id)
    if item is None:
        raise TenantsError(f"tenant '{tenant_id}' is not registered", code="tenants.unknown")
    history = [r for r in deps.audit.chain(TENANTS_CHAIN) if r.get("tenant_id") == tenant_id]
    return {**item, "history": [{"audit": f"{r['pk']}#{r['seq']}", "kind": r["kind"], "ts": r["ts"],
                                 "by": (r.get("data") or {}).get("by")} for r in history[-10:]]}


def disable(deps: Deps, tenant_id: str, by: str, reason: str = "") -> dict[str, Any]:
    """Status ``disabled`` (ingest then rejects its events, ``tenant.suspended``), audited."""
    stored = deps.tenants.read(tenant_id)
    if stored is None:
        raise TenantsError(f"tenant '{tenant_id}' is not registered", code="tenants.unknown")
    if stored.get("status") == "disabled":
        return {"tenant_id": tenant_id, "status": "disabled", "changed": False}
    item = _item({**stored, "status": "disabled"}, stored, by)
    data = {"fields": {"status": [stored.get("status"), "disabled"]}, "reason": reason[:500]}
    try:
        (record,) = _commit(deps, [(item, stored, _entry("tenant.disabled", tenant_id, item, by, data), False)])
    except Exception as exc:  # noqa: BLE001
        raise TenantsError(f"disabling '{tenant_id}' failed ({_cause(exc)}): nothing was changed",
                           code="tenants.not_applied") from exc
    return {"tenant_id": tenant_id, "status": "disabled", "changed": True, "was": stored.get("status"),
            "audit": f"{record['pk']}#{record['seq']}"}
