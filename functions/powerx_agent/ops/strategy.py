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

from powerx_agent.adapters.strategies_store import sha256_of
from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError
from powerx_agent.ops.change import Change
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
    conflicts = []
    for file, text, compiled in loaded:
        strategy = compiled.strategy
        existing = deps.strategies.version(strategy.id, strategy.version)
        if existing is not None and existing["sha256"] != sha256_of(text):
            conflicts.append(f"{file}: {strategy.id} v{strategy.version} is already published with different "
                             "content; increase the version")
    if conflicts:
        raise AgentError("not published: " + "; ".join(conflicts[:10]), code="strategy.version_exists",
                         details={"problems": conflicts})
    results: list[Published] = []
    with Change(f"publish {path}", "strategy.publish_failed",
                on_failure=lambda d: _audit_failure(deps, "strategy.publish_failed", [c.strategy.id for *_, c in loaded],
                                                    {**d, "author": author})) as change:
        fresh: list[tuple[Path, Any, dict[str, Any]]] = []
        for file, text, compiled in loaded:
            strategy = compiled.strategy
            already = deps.strategies.version(strategy.id, strategy.version) is not None
            item = change.step(f"publish {strategy.id} v{strategy.version}",
                               lambda s=strategy, t=text: deps.strategies.publish(s.id, s.version, t, author),
                               None if already else
                               lambda _item, s=strategy: deps.strategies.unpublish(s.id, s.version))
            results.append(Published(strategy.id, strategy.version, str(file), item["sha256"], already))
            if not already:
                fresh.append((file, strategy, item))
        for file, strategy, item in fresh:
            change.step(f"audit {strategy.id} v{strategy.version}", lambda f=file, s=strategy, i=item: deps.audit.append(
                AuditEntry("strategy.published", chain(s.id), strategy_id=s.id, status="PENDING",
                           data={"version": s.version, "author": author, "sha256": i["sha256"], "source": f.name})))
    return results


def approve(deps: Deps, strategy_id: str, version: int, approver: str, reason: str,
            require_other_approver: bool | None = None) -> dict[str, Any]:
    """Approve a published version and make it the active one (the matcher picks it up within
    ``LIBRARY_REFRESH_SECONDS``). With ``REQUIRE_OTHER_APPROVER`` the author cannot approve.

    Checks first (published, loads, approver rules, the state machines can be named); then, as one
    :class:`Change`: approval + active pointer + library revision (one transaction), the alias, the
    audit record. A failed step undoes the earlier ones."""
    if not approver.strip() or not reason.strip():
        raise AgentError("approve needs an approver and a reason", code="strategy.approval_incomplete")
    item = deps.strategies.version(strategy_id, version)
    if item is None:
        raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
    _check_loads(strategy_id, version, item["yaml"])
    required = deps.settings.require_other_approver if require_other_approver is None else require_other_approver
    if required and item.get("author") == approver:
        raise AgentError(f"{approver} published {strategy_id} v{version} and cannot also approve it",
                         code="strategy.self_approval")
    before = deps.strategies.snapshot(strategy_id, version)
    alias_before = deps.state_machines.alias_target(strategy_id)  # also names the ARNs: fails before any change
    with Change(f"approve {strategy_id} v{version}", "strategy.approve_failed",
                on_failure=lambda d: _audit_failure(deps, "strategy.approve_failed", [strategy_id],
                                                    {**d, "version": version, "approver": approver})) as change:
        result = change.step("activate", lambda: deps.strategies.approve(
            strategy_id, version, approver, reason, require_other_approver=required),
            lambda _: deps.strategies.restore(strategy_id, before, version))
        alias = change.step("alias", lambda: deps.state_machines.point_alias(strategy_id, version),
                            lambda moved: _alias_back(deps, strategy_id, moved, alias_before))
        change.step("audit", lambda: deps.audit.append(AuditEntry(
            "strategy.approved", chain(strategy_id), strategy_id=strategy_id, status="ACTIVE",
            data={"version": version, "approver": approver, "reason": reason, "author": item.get("author"),
                  "previous": result.get("previous"), "revision": result.get("revision"), "alias": alias})))
    return {**result, "alias": alias}


def rollback(deps: Deps, strategy_id: str, actor: str, to_version: int | None = None) -> dict[str, Any]:
    """Move the active pointer back to the previous approved version (or ``to_version``) and point
    the strategy's state-machine alias back when that version's state machine exists. Checks first;
    a failed step undoes the earlier ones (see :func:`approve`)."""
    if not actor.strip():
        raise AgentError("rollback needs an actor", code="strategy.no_actor")
    target = deps.strategies.rollback_target(strategy_id, to_version)
    before = deps.strategies.snapshot(strategy_id)
    alias_before = deps.state_machines.alias_target(strategy_id)
    with Change(f"rollback {strategy_id} to v{target}", "strategy.rollback_failed",
                on_failure=lambda d: _audit_failure(deps, "strategy.rollback_failed", [strategy_id],
                                                    {**d, "to": target, "actor": actor})) as change:
        result = change.step("activate", lambda: deps.strategies.rollback(strategy_id, actor, target),
                             lambda _: deps.strategies.restore(strategy_id, before, target))
        alias = change.step("alias", lambda: deps.state_machines.point_alias(strategy_id, target),
                            lambda moved: _alias_back(deps, strategy_id, moved, alias_before))
        change.step("audit", lambda: deps.audit.append(AuditEntry(
            "strategy.rolled_back", chain(strategy_id), strategy_id=strategy_id, status="ACTIVE",
            data={"version": result["version"], "from": result.get("previous"), "actor": actor,
                  "revision": result.get("revision"), "alias": alias})))
    return {**result, "alias": alias}


def _alias_back(deps: Any, strategy_id: str, moved: dict[str, Any], before: dict[str, Any] | None) -> None:
    previous = moved.get("previous_version_arn") or (before or {}).get("version_arn")
    if moved.get("pointed") and previous and previous != moved.get("version_arn"):
        deps.state_machines.route_alias(strategy_id, previous)


def _audit_failure(deps: Any, kind: str, strategy_ids: list[str], data: dict[str, Any]) -> None:
    for strategy_id in dict.fromkeys(strategy_ids):
        deps.audit.append(AuditEntry(kind, chain(strategy_id), strategy_id=strategy_id, status="FAILED", data=data))


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
