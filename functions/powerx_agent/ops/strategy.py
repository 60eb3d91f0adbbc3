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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from powerx_agent.adapters.strategies_store import sha256_of
from powerx_agent.audit.records import AuditEntry, now_iso
from powerx_agent.errors import AgentError
from powerx_agent.match import canary
from powerx_agent.ops import library
from powerx_agent.ops.change import Change

CHUNK = 500  # drafts per publish_new call (transactions of 50 inside)
WORKERS = 4  # requests a bulk publish or approval keeps in flight

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


def publish(deps: Deps, path: Path, author: str, progress: Callable[[str, int, int], None] | None = None,
            jobs: int | None = None) -> list[Published]:
    """Upload every strategy under ``path`` as a draft (approval PENDING), audited as
    ``strategy.published``. Everything is checked first: the library must lint clean (cross-file
    checks included), and no version may already be published with other content; then nothing
    or everything is published. New strategies are written with the first record of their audit
    chain in the same transaction, many per request; ``progress(stage, done, total)`` follows
    the stages ``lint`` and ``publish``."""
    from powerx_agent.strategy.lint import lint_library

    if not author.strip():
        raise AgentError("publish needs an author", code="strategy.no_author")
    if not path.exists():
        raise AgentError(f"{path} is neither a strategy file nor a directory", code="strategy.not_found")
    findings, loaded = lint_library(path, jobs, (lambda done, total: progress("lint", done, total)) if progress else None)
    problems = [str(f) for f in findings if f.severity == "error"]
    texts: dict[str, str] = {}
    for summary in loaded:
        try:
            texts[summary.source] = Path(summary.source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{summary.source}: cannot be read again: {exc}")
    if problems:
        raise AgentError("not published, fix these first: " + "; ".join(problems[:10]), code="strategy.invalid",
                         details={"problems": problems})
    digests = {s.source: sha256_of(texts[s.source]) for s in loaded}
    existing = deps.strategies.version_items([(s.id, s.version) for s in loaded])
    conflicts = [f"{s.source}: {s.id} v{s.version} is already published with different content; increase the version"
                 for s in loaded if (s.id, s.version) in existing
                 and existing[(s.id, s.version)]["sha256"] != digests[s.source]]
    if conflicts:
        raise AgentError("not published: " + "; ".join(conflicts[:10]), code="strategy.version_exists",
                         details={"problems": conflicts})
    new = [s for s in loaded if (s.id, s.version) not in existing]
    drafts = [{"strategy_id": s.id, "version": s.version, "yaml": texts[s.source], "sha256": digests[s.source],
               "author": author} for s in new]
    entries = [AuditEntry("strategy.published", chain(s.id), strategy_id=s.id, status="PENDING",
                          data={"version": s.version, "author": author, "sha256": digests[s.source],
                                "source": Path(s.source).name}) for s in new]
    with Change(f"publish {path}", "strategy.publish_failed",
                on_failure=lambda d: _audit_failure(deps, "strategy.publish_failed", [s.id for s in new],
                                                    {**d, "author": author})) as change:
        change.many_writes(f"publish {len(drafts)} new versions",
                           lambda: _publish_drafts(deps, drafts, entries, author, progress),
                           lambda: _unpublish(deps, drafts))
    return [Published(s.id, s.version, s.source, digests[s.source], (s.id, s.version) in existing) for s in loaded]


def _publish_drafts(deps: Deps, drafts: list[dict[str, Any]], entries: list[AuditEntry], author: str,
                    progress: Callable[[str, int, int], None] | None) -> None:
    # a few requests in flight: each transaction waits on the service most of its time
    starts = range(0, len(drafts), CHUNK)
    written_by: dict[int, list[bool]] = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {pool.submit(deps.strategies.publish_new, drafts[i:i + CHUNK], deps.audit, entries[i:i + CHUNK]): i
                   for i in starts}
        for future in as_completed(futures):
            written_by[futures[future]] = future.result()
            if progress is not None:
                progress("publish", sum(map(len, written_by.values())), len(drafts))
    written = [done for i in starts for done in written_by[i]]
    for draft, entry, done in zip(drafts, entries, written, strict=True):
        if not done:  # a new version of a strategy whose chain has records: one by one
            before = deps.strategies.version(draft["strategy_id"], draft["version"])
            deps.strategies.publish(draft["strategy_id"], draft["version"], draft["yaml"], author)
            if before is None:
                deps.audit.append(entry)


def _unpublish(deps: Deps, drafts: list[dict[str, Any]]) -> None:
    """Remove the drafts of this publish that were written (a draft approved meanwhile stays)."""
    for draft in drafts:
        try:
            deps.strategies.unpublish(draft["strategy_id"], int(draft["version"]))
        except AgentError:
            pass  # never written, or no longer a draft


def _no_canary(deps: Deps, strategy_id: str, what: str) -> None:
    if strategy_id in canary.running(deps):
        raise AgentError(f"{strategy_id} has a running canary: promote or abort it before {what} "
                         f"(`strategy canary status {strategy_id}`)", code="strategy.canary_running")


def approve(deps: Deps, strategy_id: str, version: int, approver: str, reason: str,
            require_other_approver: bool | None = None, *, promoting: dict[str, Any] | None = None) -> dict[str, Any]:
    """Approve a published version and make it the active one (the matcher picks it up within
    ``LIBRARY_REFRESH_SECONDS``). With ``REQUIRE_OTHER_APPROVER`` the author cannot approve.
    ``promoting``: the canary run this approval promotes (ended in the same revision write)."""
    if not approver.strip() or not reason.strip():
        raise AgentError("approve needs an approver and a reason", code="strategy.approval_incomplete")
    if promoting is None:
        _no_canary(deps, strategy_id, "approving another version")
    item = deps.strategies.version(strategy_id, version)
    if item is None:
        raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
    record = library.compile_version(strategy_id, version, item)  # refuses a version that does not load
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
            strategy_id, version, approver, reason, require_other_approver=required,
            build=library.builder(deps.strategies, known=[record]), end_canary=promoting is not None),
            lambda _: deps.strategies.restore(strategy_id, before, version))
        alias = change.step("alias", lambda: deps.state_machines.point_alias(strategy_id, version),
                            lambda moved: _alias_back(deps, strategy_id, moved, alias_before))
        change.step("audit", lambda: deps.audit.append(AuditEntry(
            "strategy.approved", chain(strategy_id), strategy_id=strategy_id, status="ACTIVE",
            data={"version": version, "approver": approver, "reason": reason, "author": item.get("author"),
                  "previous": result.get("previous"), "revision": result.get("revision"), "alias": alias,
                  **({"canary_run": promoting["sk"]} if promoting else {})})))
    return {**result, "alias": alias}


def approve_canary(deps: Deps, strategy_id: str, version: int, share: str, approver: str, reason: str, *,
                   margin: float | None = None, min_events: int | None = None,
                   require_other_approver: bool | None = None) -> dict[str, Any]:
    """``strategy approve ID --version N --canary 10%``: version N decides that share of the events of
    its event types (chosen by a hash of the idempotency key), the active version the rest, until the
    canary is promoted or aborted, by an operator or by itself (docs/strategies.md, "Canary rollout").
    Checked first: approver and reason, the share, the version loads, the author is not the approver
    (``REQUIRE_OTHER_APPROVER``), an active baseline other than N, no canary on the same event types."""
    from powerx_agent.strategy.canary import DEFAULT_MARGIN, DEFAULT_MIN_EVENTS, Rules, parse_share
    from powerx_agent.strategy.loader import load_strategy_text

    if not approver.strip() or not reason.strip():
        raise AgentError("approve needs an approver and a reason", code="strategy.approval_incomplete")
    try:
        percent = parse_share(share)
    except ValueError as exc:
        raise AgentError(str(exc), code="strategy.canary_share") from None
    rules = Rules(DEFAULT_MARGIN if margin is None else margin, DEFAULT_MIN_EVENTS if min_events is None else min_events)
    if not 0 <= rules.margin < 1 or not 1 <= rules.min_events <= 1_000_000:
        raise AgentError("the canary margin is a rate in [0, 1) and min-events at least 1", code="strategy.canary_rules")
    _no_canary(deps, strategy_id, "starting another one")
    item = deps.strategies.version(strategy_id, version)
    if item is None:
        raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
    library.compile_version(strategy_id, version, item)  # refuses a version that does not load
    compiled, _ = load_strategy_text(item["yaml"], f"{strategy_id}@v{version}")
    required = deps.settings.require_other_approver if require_other_approver is None else require_other_approver
    if required and item.get("author") == approver:
        raise AgentError(f"{approver} published {strategy_id} v{version} and cannot also approve it",
                         code="strategy.self_approval")
    active = deps.strategies.active(strategy_id)
    if active is None:
        raise AgentError(f"{strategy_id} has no active version to compare a canary with; approve v{version} "
                         "without --canary", code="strategy.not_active")
    if int(active["version"]) == version:
        raise AgentError(f"{strategy_id} v{version} is already the active version", code="strategy.canary_active")
    return canary.start(deps, strategy_id, version, percent, approver, reason, rules=rules, compiled=compiled,
                        item=item, baseline=int(active["version"]))


def promote_canary(deps: Deps, strategy_id: str, approver: str, reason: str) -> dict[str, Any]:
    """The canary version becomes the active version for every event: an approval (``strategy.approved``,
    audited and checked like one) that ends the canary in the same revision write
    (``strategy.canary_promoted``, with the final comparison)."""
    if not approver.strip() or not reason.strip():
        raise AgentError("promote needs an approver and a reason", code="strategy.approval_incomplete")
    run = canary.current_run(deps, strategy_id)
    result = approve(deps, strategy_id, int(run["version"]), approver, reason, promoting=run)
    deps.strategies.mark_canary(strategy_id, run["sk"], "PROMOTED",
                                {"ended_at": now_iso(), "ended_by": approver, "end_reason": reason})
    final = canary.describe(deps.strategies.canary_run(strategy_id, run["sk"]) or run)
    deps.audit.append(AuditEntry("strategy.canary_promoted", chain(strategy_id), strategy_id=strategy_id,
                                 status="ACTIVE", data={"version": run["version"], "baseline": run["baseline"],
                                                        "approver": approver, "reason": reason, "run": run["sk"],
                                                        "revision": result.get("revision"),
                                                        "comparison": final["comparison"]}))
    return {**result, "canary": final}


def abort_canary(deps: Deps, metrics: Any, strategy_id: str, actor: str, reason: str) -> dict[str, Any]:
    """The baseline decides every event again; the canary version stays published, not approved."""
    if not actor.strip() or not reason.strip():
        raise AgentError("abort needs an actor and a reason", code="strategy.approval_incomplete")
    final = canary.abort(deps, metrics, strategy_id, actor, reason)
    if final is None:
        raise AgentError(f"{strategy_id}'s canary ended meanwhile", code="strategy.no_canary")
    return final


def approve_published(deps: Deps, path: Path, approver: str, reason: str,
                      progress: Callable[[str, int, int], None] | None = None,
                      require_other_approver: bool | None = None) -> dict[str, Any]:
    """Approve every strategy of a library directory, as published (same content), in one library
    revision with one artifact: how a large library is brought in. Everything is checked before
    anything changes (lint clean, each version published with exactly this content, nobody approves
    their own with ``REQUIRE_OTHER_APPROVER``); each approval is audited as ``strategy.approved``."""
    from powerx_agent.strategy.lint import lint_library

    if not approver.strip() or not reason.strip():
        raise AgentError("approve needs an approver and a reason", code="strategy.approval_incomplete")
    if not path.exists():
        raise AgentError(f"{path} is neither a strategy file nor a directory", code="strategy.not_found")
    findings, loaded = lint_library(path, progress=(lambda d, t: progress("lint", d, t)) if progress else None)
    problems = [str(f) for f in findings if f.severity == "error"]
    items = deps.strategies.version_items([(s.id, s.version) for s in loaded])
    required = deps.settings.require_other_approver if require_other_approver is None else require_other_approver
    canaried = canary.running(deps)
    problems += [f"{s.source}: {s.id} has a running canary: promote or abort it first" for s in loaded if s.id in canaried]
    for summary in loaded:
        item = items.get((summary.id, summary.version))
        digest = sha256_of(Path(summary.source).read_text(encoding="utf-8"))
        if item is None:
            problems.append(f"{summary.source}: {summary.id} v{summary.version} is not published")
        elif item["sha256"] != digest:
            problems.append(f"{summary.source}: differs from the published {summary.id} v{summary.version}")
        elif required and item.get("author") == approver:
            problems.append(f"{approver} published {summary.id} v{summary.version} and cannot also approve it")
    if problems:
        raise AgentError("nothing approved, fix these first: " + "; ".join(problems[:10]), code="strategy.invalid",
                         details={"problems": problems})
    chosen = [items[(s.id, s.version)] for s in loaded]
    result = deps.strategies.approve_many(chosen, approver, reason, build=library.builder(
        deps.strategies, progress=(lambda d, t: progress("compile", d, t)) if progress else None))
    previous = result["previous"]

    def record(item: dict[str, Any]) -> None:
        sid, version = item["strategy_id"], int(item["version"])
        # a strategy never active before has no state machine yet: the matcher creates it
        alias = deps.state_machines.point_alias(sid, version) if sid in previous else {"pointed": False,
                                                                          "why": "the strategy has no state machine yet"}
        deps.audit.append(AuditEntry("strategy.approved", chain(sid), strategy_id=sid, status="ACTIVE",
                                     data={"version": version, "approver": approver, "reason": reason,
                                           "author": item.get("author"), "previous": previous.get(sid),
                                           "revision": result["revision"], "alias": alias}))

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for done, future in enumerate(as_completed([pool.submit(record, item) for item in chosen]), start=1):
            future.result()
            if progress is not None and (done % 200 == 0 or done == len(chosen)):
                progress("audit", done, len(chosen))
    return {"revision": result["revision"], "approved": len(chosen), "artifact": result.get("artifact")}


def rollback(deps: Deps, strategy_id: str, actor: str, to_version: int | None = None) -> dict[str, Any]:
    """Move the active pointer back to the previous approved version (or ``to_version``) and point
    the strategy's state-machine alias back when that version's state machine exists. Checks first;
    a failed step undoes the earlier ones (see :func:`approve`)."""
    if not actor.strip():
        raise AgentError("rollback needs an actor", code="strategy.no_actor")
    _no_canary(deps, strategy_id, "rolling back")
    target = deps.strategies.rollback_target(strategy_id, to_version)
    before = deps.strategies.snapshot(strategy_id)
    alias_before = deps.state_machines.alias_target(strategy_id)
    with Change(f"rollback {strategy_id} to v{target}", "strategy.rollback_failed",
                on_failure=lambda d: _audit_failure(deps, "strategy.rollback_failed", [strategy_id],
                                                    {**d, "to": target, "actor": actor})) as change:
        result = change.step("activate", lambda: deps.strategies.rollback(
            strategy_id, actor, target, build=library.builder(deps.strategies)),
            lambda _: deps.strategies.restore(strategy_id, before, target))
        alias = change.step("alias", lambda: deps.state_machines.point_alias(strategy_id, target),
                            lambda moved: _alias_back(deps, strategy_id, moved, alias_before))
        change.step("audit", lambda: deps.audit.append(AuditEntry(
            "strategy.rolled_back", chain(strategy_id), strategy_id=strategy_id, status="ACTIVE",
            data={"version": result["version"], "from": result.get("previous"), "actor": actor,
                  "revision": result.get("revision"), "alias": alias})))
    return {**result, "alias": alias}


def _alias_back(deps: Deps, strategy_id: str, moved: dict[str, Any], before: dict[str, Any] | None) -> None:
    previous = moved.get("previous_version_arn") or (before or {}).get("version_arn")
    if moved.get("pointed") and previous and previous != moved.get("version_arn"):
        deps.state_machines.route_alias(strategy_id, previous)


def _audit_failure(deps: Deps, kind: str, strategy_ids: list[str], data: dict[str, Any]) -> None:
    for strategy_id in dict.fromkeys(strategy_ids):
        deps.audit.append(AuditEntry(kind, chain(strategy_id), strategy_id=strategy_id, status="FAILED", data=data))


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


def published(deps: Deps, strategy_ids: list[str] | None = None, *, library: bool = True) -> list[dict[str, Any]]:
    """Published versions and the active pointer of each strategy in the library revision (plus
    ``strategy_ids``, e.g. drafts never approved; with ``library=False`` only those: one query per
    strategy, so a page of a large library reads only its own)."""
    revision = deps.strategies.revision()
    ids = sorted((set(revision.get("active", {})) if library else set()) | set(strategy_ids or []))
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
