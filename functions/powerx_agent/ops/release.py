"""Releases of the deployed functions (``powerx-agent release list | rollback``), audited.

A release is what one deploy publishes: a version of every function, described
``powerx-agent release <id>`` (infra/components/functions.py), with each function's ``live`` alias
(``spec.LIVE_ALIAS``) pointing at it. Every trigger invokes the alias (rule target, event source
mappings, API integrations, the task ARNs of compiled state machines), so moving the aliases moves the
whole service at once; versions are immutable and kept, so an earlier release can always be pointed at
again.

``rollback`` moves every alias to the release before the live one (or ``to`` a given release). It
checks everything first (the live release is one release on every function, the target has a version
of every function) and changes nothing when a check fails; if moving an alias fails midway, the aliases
already moved are moved back, so the service is never left half on one release. The move is audited as
``release.rolled_back`` in the chain ``OPS#release`` (a failed move as ``release.rollback_failed``); should
that audit record fail to be written, the aliases go back too (:class:`powerx_agent.ops.change.Change`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError
from powerx_agent.ops.change import Change

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

CHAIN = "OPS#release"


@dataclass
class Release:
    release_id: str
    published: str = ""  # the earliest publication time of its versions
    versions: dict[str, int] = field(default_factory=dict)  # function key -> version

    def to_dict(self, live: str | None) -> dict[str, Any]:
        return {"release": self.release_id, "published": self.published, "live": self.release_id == live,
                "functions": len(self.versions), "versions": dict(sorted(self.versions.items()))}


@dataclass
class Inventory:
    releases: list[Release]  # oldest first
    alias: dict[str, int | None]  # function key -> version the live alias points at
    alias_release: dict[str, str | None]  # function key -> release of that version

    @property
    def live(self) -> str | None:
        """The live release when every function's alias is on the same one, else None."""
        found = set(self.alias_release.values())
        return next(iter(found)) if len(found) == 1 and None not in found else None

    def release(self, release_id: str) -> Release | None:
        return next((r for r in self.releases if r.release_id == release_id), None)


def function_name(settings: Any, key: str) -> str:
    return f"{settings.resource_prefix}{spec.FUNCTIONS_BY_KEY[key].name}"


def inventory(deps: Deps) -> Inventory:
    store = deps.releases
    by_id: dict[str, Release] = {}
    alias: dict[str, int | None] = {}
    alias_release: dict[str, str | None] = {}
    missing = []
    for fn in spec.FUNCTIONS:
        name = function_name(deps.settings, fn.key)
        versions = store.versions(name)
        if versions is None:
            missing.append(name)
            continue
        of_version = {v.version: spec.release_of(v.description) for v in versions}
        for v in versions:
            release_id = of_version[v.version]
            if release_id is None:
                continue  # a version no release published (e.g. by hand): never a rollback target
            release = by_id.setdefault(release_id, Release(release_id))
            release.versions[fn.key] = max(v.version, release.versions.get(fn.key, 0))
            release.published = min(release.published or v.last_modified, v.last_modified)
        alias[fn.key] = store.alias_version(name, spec.LIVE_ALIAS)
        alias_release[fn.key] = of_version.get(alias[fn.key]) if alias[fn.key] is not None else None
    if missing:
        raise AgentError(f"function(s) not found: {', '.join(missing)} (is the stack or endpoint right?)",
                         code="release.functions_missing", details={"functions": missing})
    # every function publishes its versions in release order, so any function's version numbers order them
    releases = sorted(by_id.values(), key=lambda r: (r.published, sorted(r.versions.values())))
    return Inventory(releases, alias, alias_release)


def list_releases(deps: Deps) -> dict[str, Any]:
    found = inventory(deps)
    return {"live": found.live, "mixed": found.live is None,
            "aliases": {k: {"version": v, "release": found.alias_release[k]} for k, v in sorted(found.alias.items())},
            "releases": [r.to_dict(found.live) for r in reversed(found.releases)]}


def plan_rollback(deps: Deps, to: str | None = None) -> tuple[Inventory, Release]:
    """Check everything a rollback needs; returns the inventory and the target release."""
    found = inventory(deps)
    if to is None:
        if found.live is None:
            raise AgentError("the live aliases point at different releases ("
                             + ", ".join(f"{k}: {r or 'no release'}" for k, r in sorted(found.alias_release.items()))
                             + "); choose the release to point them all at with --to", code="release.mixed")
        position = [r.release_id for r in found.releases].index(found.live)
        if position == 0:
            raise AgentError(f"release {found.live} is the oldest one: there is no earlier release to go back to",
                             code="release.none_earlier")
        target = found.releases[position - 1]
    else:
        target = found.release(to)
        if target is None:
            known = ", ".join(r.release_id for r in reversed(found.releases)) or "none"
            raise AgentError(f"no release {to!r}; releases: {known}", code="release.unknown")
        if found.live == to:
            raise AgentError(f"release {to} is already live", code="release.already_live")
    lacking = sorted(set(spec.FUNCTIONS_BY_KEY) - set(target.versions))
    if lacking:
        raise AgentError(f"release {target.release_id} has no version of {', '.join(lacking)} (they did not exist "
                         "then): pointing the service at it would mix releases", code="release.incomplete",
                         details={"functions": lacking})
    return found, target


def rollback(deps: Deps, by: str, reason: str, to: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    if not by.strip() or not reason.strip():
        raise AgentError("a rollback needs --by and --reason (both are audited)", code="release.incomplete_request")
    found, target = plan_rollback(deps, to)
    moves = {key: {"from": found.alias[key], "to": version} for key, version in sorted(target.versions.items())}
    result = {"from": found.live, "to": target.release_id, "by": by, "reason": reason, "functions": moves,
              "dry_run": dry_run}
    if dry_run:
        return result
    store = deps.releases

    def failed(details: dict[str, Any]) -> None:
        deps.audit.append(AuditEntry("release.rollback_failed", CHAIN, status="FAILED", data={
            **result, "error": details["error"], "failed_step": details["failed_step"],
            "restored": [step.removeprefix("move ") for step in details["undone"] if step.startswith("move ")],
            "not_restored": [s["step"].removeprefix("move ") for s in details["not_undone"]]}))

    with Change(f"rollback to release {target.release_id}", "release.rollback_failed", on_failure=failed) as change:
        for key, move in moves.items():
            if move["from"] != move["to"]:
                name = function_name(deps.settings, key)
                change.step(f"move {key}", lambda n=name, m=move: store.point_alias(
                    n, spec.LIVE_ALIAS, m["to"], spec.release_description(target.release_id)),
                    lambda _, n=name, k=key, m=move: store.point_alias(
                        n, spec.LIVE_ALIAS, int(m["from"]), spec.release_description(found.alias_release[k] or "unknown")))
        record = change.step("audit", lambda: deps.audit.append(
            AuditEntry("release.rolled_back", CHAIN, status="ROLLED_BACK", data=result)))
    return {**result, "audit": f"{CHAIN}#{record['seq']}"}
