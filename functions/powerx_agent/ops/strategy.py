"""Publishing, approving and rolling back strategy versions, with their audit records
(docs/strategies.md, "Lifecycle").

Used by the CLI (``powerx-agent strategy publish|approve|rollback|diff|list --published``). Every
function takes ``deps`` (a :class:`powerx_agent.deps.Deps`): the store is ``deps.strategies``, the
audit trail ``deps.audit`` (chain ``STRAT#<strategy id>``, kinds ``strategy.published``,
``strategy.approved``, ``strategy.rolled_back``); approve and rollback point the strategy's
state-machine alias (:mod:`powerx_agent.adapters.state_machines`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError
from powerx_agent.strategy.loader import load_strategy_text, strategy_files

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


def chain(strategy_id: str) -> str:
    return f"STRAT#{strategy_id}"


# -- publish / approve / rollback ------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    strategy_id: str
    version: int
    source: str
    sha256: str
    already: bool

    def to_dict(self) -> dict[str, Any]:
        return {"strategy_id": self.strategy_id, "version": self.version, "source": self.source,
                "sha256": self.sha256, "already_published": self.already}


def publish(deps: Deps, path: Path, author: str) -> list[Published]:
    """Upload every strategy under ``path`` as a draft (approval PENDING). All files must load
    without errors first: nothing is published from a library that does not lint clean."""
    if not author.strip():
        raise AgentError("publish needs an author", code="strategy.no_author")
    loaded: list[tuple[Path, str, Any]] = []
    problems: list[str] = []
    for file in strategy_files(path):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(f"{file}: not UTF-8")
            continue
        compiled, findings = load_strategy_text(text, str(file))
        errors = [f for f in findings if f.severity == "error"]
        if errors or compiled is None:
            problems += [str(f) for f in errors] or [f"{file}: not a strategy"]
            continue
        loaded.append((file, text, compiled))
    if problems:
        raise AgentError("not published, fix these first: " + "; ".join(problems[:10]), code="strategy.invalid",
                         details={"problems": problems})
    results = []
    for file, text, compiled in loaded:
        strategy = compiled.strategy
        before = deps.strategies.version(strategy.id, strategy.version)
        item = deps.strategies.publish(strategy.id, strategy.version, text, author)
        already = before is not None
        if not already:
            deps.audit.append(AuditEntry(AuditKind.STRATEGY_PUBLISHED, chain(strategy.id), strategy_id=strategy.id,
                                         status="PENDING", data={"version": strategy.version, "author": author,
                                                                 "sha256": item["sha256"], "source": file.name}))
        results.append(Published(strategy.id, strategy.version, str(file), item["sha256"], already))
    return results


def approve(deps: Deps, strategy_id: str, version: int, approver: str, reason: str,
            require_other_approver: bool | None = None) -> dict[str, Any]:
    """Approve a published version and make it the active one (the matcher picks it up within
    ``LIBRARY_REFRESH_SECONDS``). With ``REQUIRE_OTHER_APPROVER`` the author cannot approve."""
    if not approver.strip() or not reason.strip():
        raise AgentError("approve needs an approver and a reason", code="strategy.approval_incomplete")
    item = deps.strategies.version(strategy_id, version)
    if item is None:
        raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
    _check_loads(strategy_id, version, item["yaml"])
    required = deps.settings.require_other_approver if require_other_approver is None else require_other_approver
    result = deps.strategies.approve(strategy_id, version, approver, reason, require_other_approver=required)
    alias = deps.state_machines.point_alias(strategy_id, version)
    deps.audit.append(AuditEntry(AuditKind.STRATEGY_APPROVED, chain(strategy_id), strategy_id=strategy_id, status="ACTIVE",
                                 data={"version": version, "approver": approver, "reason": reason,
                                       "author": item.get("author"), "previous": result.get("previous"),
                                       "revision": result.get("revision"), "alias": alias}))
    return {**result, "alias": alias}


def rollback(deps: Deps, strategy_id: str, actor: str, to_version: int | None = None) -> dict[str, Any]:
    """Move the active pointer back to the previous approved version (or ``to_version``) and point
    the strategy's state-machine alias back when that version's state machine exists."""
    result = deps.strategies.rollback(strategy_id, actor, to_version)
    alias = deps.state_machines.point_alias(strategy_id, int(result["version"]))
    deps.audit.append(AuditEntry(AuditKind.STRATEGY_ROLLED_BACK, chain(strategy_id), strategy_id=strategy_id,
                                 status="ACTIVE", data={"version": result["version"], "from": result.get("previous"),
                                                        "actor": actor, "revision": result.get("revision"),
                                                        "alias": alias}))
    return {**result, "alias": alias}


def _check_loads(strategy_id: str, version: int, text: str) -> None:
    compiled, findings = load_strategy_text(text, f"{strategy_id}@v{version}")
    errors = [str(f) for f in findings if f.severity == "error"]
    if errors or compiled is None:
        raise AgentError(f"{strategy_id} v{version} does not load: {'; '.join(errors[:5])}",
                         code="strategy.invalid")
    if compiled.strategy.id != strategy_id or compiled.strategy.version != version:
        raise AgentError(f"{strategy_id} v{version} holds {compiled.strategy.id} v{compiled.strategy.version}",
                         code="strategy.invalid")


def diff(deps: Deps, strategy_id: str, from_version: int, to_version: int) -> str:
    """Unified diff of the YAML of two published versions."""
    texts = []
    for version in (from_version, to_version):
        item = deps.strategies.version(strategy_id, version)
        if item is None:
            raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
        texts.append(item["yaml"])
    return "".join(difflib.unified_diff(
        texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
        fromfile=f"{strategy_id}@v{from_version}", tofile=f"{strategy_id}@v{to_version}"))


def published(deps: Deps, strategy_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Published versions and the active pointer of each strategy in the library revision (plus
    ``strategy_ids``, e.g. drafts never approved)."""
    revision = deps.strategies.revision()
    ids = sorted(set(revision.get("active", {})) | set(strategy_ids or []))
    rows = []
    for strategy_id in ids:
        active = deps.strategies.active(strategy_id)
        for item in sorted(deps.strategies.versions(strategy_id), key=lambda i: int(i["version"])):
            rows.append({"strategy_id": strategy_id, "version": int(item["version"]),
                         "active": bool(active and int(active["version"]) == int(item["version"])),
                         "approval": item.get("approval"), "author": item.get("author"),
                         "approved_by": item.get("approved_by"), "approval_reason": item.get("approval_reason"),
                         "published_at": item.get("published_at"), "sha256": item.get("sha256"),
                         "library_revision": revision.get("revision")})
    return rows


def event_facts(event: dict[str, Any]) -> Any:
    """An EventBridge event → the facts the matcher evaluates, through the envelope ingest applies
    (``strategy test``, ``simulate`` and the console's test box)."""
    from powerx_agent.ingest.envelope import parse_event
    from powerx_agent.strategy.evaluate import EventFacts

    incoming = parse_event(event)
    env = incoming.envelope
    return EventFacts(event_type=incoming.event_type, source=incoming.source, tenant_id=env.tenant_id,
                      event_id=env.event_id, idempotency_key=env.key,
                      detail=env.model_dump(mode="json", exclude_none=True), bus_event_id=incoming.bus_event_id)
