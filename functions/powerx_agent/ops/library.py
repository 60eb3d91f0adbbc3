"""The compiled artifact of each library revision: built when a revision is published, checked and
rebuilt by operators (``powerx-agent strategy library status | rebuild``; docs/strategies.md,
"Library artifacts").

:func:`builder` gives the store (:meth:`~powerx_agent.adapters.strategies_store.StrategiesStore.
bump_revision`) the function that builds the next revision's artifact: the records of versions
that were already in the current revision's artifact are reused as they are, the others are
compiled from their YAML (the same loader as ``strategy lint``), so approving one version of a
10,000-strategy library compiles one strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.records import AuditEntry
from powerx_agent.errors import AgentError, StrategyError
from powerx_agent.strategy.artifact import Built, Record, check_active, encode, inputs_sha256, read, record_of

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

CHAIN = "OPS#library"


def compile_version(strategy_id: str, version: int, item: dict[str, Any] | None) -> Record:
    """The artifact record of a published version (its YAML compiled as ``strategy lint`` does)."""
    from powerx_agent.strategy.loader import load_strategy_text

    if item is None:
        raise AgentError(f"active version {strategy_id} v{version} is missing", code="strategy.missing_version")
    compiled, findings = load_strategy_text(item["yaml"], f"{strategy_id}@v{version}")
    errors = [str(f) for f in findings if f.severity == "error"]
    if errors or compiled is None:
        raise AgentError(f"{strategy_id} v{version} does not load: {'; '.join(errors[:5])}", code="strategy.invalid")
    if (compiled.strategy.id, compiled.strategy.version) != (strategy_id, version):
        raise AgentError(f"{strategy_id} v{version} holds {compiled.strategy.id} v{compiled.strategy.version}",
                         code="strategy.invalid")
    return record_of(compiled, item["sha256"])


def builder(store: Any, reuse: bool = True, known: list[Record] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Callable[[dict[str, Any], dict[str, int], int], Built]:
    """``build(current revision item, next active map, next revision) -> Built`` over ``store`` (a
    :class:`~powerx_agent.adapters.strategies_store.StrategiesStore`). With ``reuse``,
    records of the current artifact (when it verifies) are kept; without, everything is compiled.
    ``known``: records compiled already (the version being approved)."""

    def build(current: dict[str, Any], active: dict[str, int], revision: int) -> Built:
        previous: dict[tuple[str, int], Record] = {r.key: r for r in known or []}
        if reuse and current.get("artifact"):
            try:
                artifact = read(store.artifact, current["artifact"], None)
                previous = {r.key: r for r in artifact.records()} | previous
            except AgentError:
                pass  # not usable: compile everything
        wanted = sorted(active.items())
        missing = [(sid, v) for sid, v in wanted if (sid, v) not in previous]
        items = store.version_items(missing) if missing else {}
        records = []
        for done, (sid, version) in enumerate(wanted, start=1):
            records.append(previous.get((sid, version)) or compile_version(sid, version, items.get((sid, version))))
            if progress is not None and done % 500 == 0:
                progress(done, len(wanted))
        return encode(records, revision)

    return build


@dataclass(frozen=True)
class Status:
    revision: int
    active: int
    artifact: dict[str, Any] | None
    ok: bool
    problem: str | None
    inputs_checked: bool

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "active_strategies": self.active, "artifact": self.artifact,
                "ok": self.ok, "problem": self.problem, "inputs_checked": self.inputs_checked}


def status(deps: Deps, deep: bool = False) -> Status:
    """Whether the current revision's artifact is what a matcher would serve: present, intact, of
    this revision and holding exactly its active versions; with ``deep``, also built from the
    YAML each version holds now (its inputs digest against every version item)."""
    current = deps.strategies.revision()
    number = int(current.get("revision", 0))
    active = {k: int(v) for k, v in current.get("active", {}).items()}
    pointer = current.get("artifact")
    try:
        artifact = read(deps.strategies.artifact, pointer, number)
        check_active(artifact, active)
        if deep:
            items = deps.strategies.version_items(sorted(active.items()))
            inputs = [(sid, v, str((items.get((sid, v)) or {}).get("sha256"))) for sid, v in active.items()]
            if inputs_sha256(inputs) != artifact.inputs_sha256:
                raise StrategyError("the artifact was not built from the versions' current YAML",
                                    code="artifact.inputs_differ")
    except AgentError as exc:
        return Status(number, len(active), pointer, False, f"{exc.code}: {exc.message}", deep)
    return Status(number, len(active), pointer, True, None, deep)


def rebuild(deps: Deps, actor: str, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compile every active version from its YAML into a fresh artifact for the current revision
    (after an abort page for a corrupt or missing artifact); audited as ``library.rebuilt``."""
    if not actor.strip():
        raise AgentError("rebuild needs an actor", code="strategy.no_author")
    number = int(deps.strategies.revision().get("revision", 0))
    if number == 0:
        raise AgentError("nothing is published yet: there is no revision to build", code="strategy.not_active")
    pointer = deps.strategies.attach_artifact(number, builder(deps.strategies, reuse=False, progress=progress))
    deps.audit.append(AuditEntry("library.rebuilt", CHAIN, status="OK",
                                 data={"actor": actor, "revision": number, "artifact": pointer}))
    return {"revision": number, "artifact": pointer}
