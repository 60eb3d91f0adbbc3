"""Published strategy versions, approvals and the active pointers in ``agent_strategies``.

Items: ``STRATEGY#<id> / V#<version>`` (the YAML text, author, approval), ``STRATEGY#<id> / ACTIVE``
(the active version and the history of previous ones, for rollback), ``LIBRARY / REVISION``
(a counter, the map of active versions and the pointer to the revision's compiled artifact: the
one item the matcher polls; it also holds the running canaries, ``canaries.<id>``, and ``canary_seq``, bumped
by every canary change), ``CANARY#<id> / RUN#<started>#V<version>`` (one canary run: its plan, state and
each arm's tallies) and ``ARTIFACT#<sha256> / C#<n>`` (the artifact's bytes in chunks of
:data:`CHUNK_BYTES`, immutable, named by their digest; the last :data:`KEEP_ARTIFACTS` are kept).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, batch_get, from_item, key, pages, to_item, values
from powerx_agent.errors import AgentError

CHUNK_BYTES = 350_000
"""Bytes of artifact per item (DynamoDB's item limit is 400 KB, names and keys included)."""
KEEP_ARTIFACTS = 3
"""Artifacts of the newest revisions kept (the current one and the last good ones before it)."""
MAX_ARTIFACT_CHUNKS = 1024

Builder = Callable[[dict[str, Any], dict[str, int], int], Any]
"""(current revision item, next active map, next revision) -> an artifact (``.payload``, ``.strategies``,
``.inputs_sha256``) for the next revision: see :mod:`powerx_agent.ops.library`."""


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


APPROVAL_FIELDS = ("approval", "approved_by", "approved_at", "approval_reason")


class StrategiesStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=pk, sk=sk), ConsistentRead=True)
        return from_item(out.get("Item"))

    def publish(self, strategy_id: str, version: int, text: str, author: str) -> dict[str, Any]:
        digest = sha256_of(text)
        existing = self._get(f"STRATEGY#{strategy_id}", f"V#{version:06d}")
        if existing is not None:
            if existing["sha256"] == digest:
                return existing
            raise AgentError(f"{strategy_id} v{version} is already published with different content; "
                             "increase the version", code="strategy.version_exists")
        item = {"pk": f"STRATEGY#{strategy_id}", "sk": f"V#{version:06d}", "strategy_id": strategy_id,
                "version": version, "yaml": text, "sha256": digest, "author": author,
                "published_at": round(time.time(), 3), "approval": "PENDING"}
        self._ddb.put_item(TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")
        return item

    def publish_new(self, drafts: list[dict[str, Any]], audit: Any, entries: list[Any]) -> list[bool]:
        """Publish many new versions, each with the first record of its audit chain, in
        transactions of up to 50 (version item + audit record, both conditional): a version is
        never published without its record. ``drafts``: {strategy_id, version, yaml, sha256, author}.
        Returns, per draft, whether it was published here; False when its version exists already
        or its chain has records (the caller publishes those one by one)."""
        done = [False] * len(drafts)
        for start in range(0, len(drafts), 50):
            batch = list(range(start, min(start + 50, len(drafts))))
            for attempt in range(12):
                if not batch:
                    break
                actions, records = [], []
                for n in batch:
                    draft = drafts[n]
                    item = {"pk": f"STRATEGY#{draft['strategy_id']}", "sk": f"V#{int(draft['version']):06d}",
                            "strategy_id": draft["strategy_id"], "version": int(draft["version"]),
                            "yaml": draft["yaml"], "sha256": draft["sha256"], "author": draft["author"],
                            "published_at": round(time.time(), 3), "approval": "PENDING"}
                    put, record = audit.first_record(entries[n])
                    actions += [{"Put": {"TableName": self._table, "Item": to_item(item),
                                         "ConditionExpression": "attribute_not_exists(pk)"}}, put]
                    records.append(record)
                try:
                    self._ddb.transact_write_items(TransactItems=actions)
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) != "TransactionCanceledException":
                        raise
                    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
                    failed = {batch[i // 2] for i, r in enumerate(reasons)
                              if (r or {}).get("Code") == "ConditionalCheckFailed"}
                    if not failed:  # cancelled for another reason (a conflicting transaction): again
                        time.sleep(min(1.0, 0.02 * 2 ** attempt))
                    batch = [n for n in batch if n not in failed]
                    continue
                for record in records:
                    audit.written(record)
                for n in batch:
                    done[n] = True
                batch = []
            if batch:
                raise AgentError("publishing kept conflicting with other writers", code="strategy.contention")
        return done

    def version(self, strategy_id: str, version: int) -> dict[str, Any] | None:
        return self._get(f"STRATEGY#{strategy_id}", f"V#{version:06d}")

    def versions(self, strategy_id: str) -> list[dict[str, Any]]:
        """Every published version, over every page of the query."""
        return list(all_items(self._ddb, "query", TableName=self._table,
                              KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                              ExpressionAttributeValues=values(pk=f"STRATEGY#{strategy_id}", v="V#")))

    def active(self, strategy_id: str) -> dict[str, Any] | None:
        return self._get(f"STRATEGY#{strategy_id}", "ACTIVE")

    def revision(self) -> dict[str, Any]:
        return self._get("LIBRARY", "REVISION") or {"revision": 0, "active": {}}

    def revision_head(self) -> dict[str, Any]:
        """The revision number and its artifact pointer, without the active map (which grows with
        the library): what a matcher reads every refresh."""
        out = self._ddb.get_item(TableName=self._table, Key=key(pk="LIBRARY", sk="REVISION"), ConsistentRead=True,
                                 ProjectionExpression="revision, artifact, artifacts, canaries, canary_seq")
        return from_item(out.get("Item")) or {"revision": 0}

    # -- compiled library artifacts ----------------------------------------------------------------
    def put_artifact(self, payload: bytes) -> dict[str, Any]:
        """Store ``payload`` under its SHA-256 (idempotent); returns the pointer a revision holds."""
        digest = hashlib.sha256(payload).hexdigest()
        chunks = [payload[i:i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)] or [b""]
        if len(chunks) > MAX_ARTIFACT_CHUNKS:
            raise AgentError(f"the library artifact is {len(payload):,} bytes, more than "
                             f"{MAX_ARTIFACT_CHUNKS * CHUNK_BYTES:,}", code="artifact.too_large")
        requests = [{"PutRequest": {"Item": {**key(pk=f"ARTIFACT#{digest}", sk=f"C#{n:05d}"), "data": {"B": chunk}}}}
                    for n, chunk in enumerate(chunks)]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start:start + 25])
        return {"sha256": digest, "bytes": len(payload), "chunks": len(chunks)}

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for attempt in range(12):
            out = self._ddb.batch_write_item(RequestItems={self._table: requests})
            requests = out.get("UnprocessedItems", {}).get(self._table, [])
            if not requests:
                return
            time.sleep(min(1.0, 0.02 * 2 ** attempt))
        raise AgentError("DynamoDB kept items of a batch write unprocessed", code="strategy.contention")

    def artifact(self, pointer: dict[str, Any]) -> bytes:
        """The bytes of the artifact ``pointer`` names (not verified here: the reader checks the digest)."""
        digest, expected = str(pointer.get("sha256", "")), int(pointer.get("chunks", 0))
        if not digest or not 0 < expected <= MAX_ARTIFACT_CHUNKS:
            raise AgentError("the revision names no artifact", code="artifact.missing")
        parts: list[tuple[str, bytes]] = []
        for page in pages(self._ddb, "query", TableName=self._table, ConsistentRead=True,
                          KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues=values(pk=f"ARTIFACT#{digest}")):
            parts += [(item["sk"]["S"], item["data"]["B"]) for item in page.get("Items", [])]
            if len(parts) > expected:
                break
        if len(parts) != expected or [sk for sk, _ in parts] != [f"C#{n:05d}" for n in range(expected)]:
            raise AgentError(f"artifact {digest[:12]} has {len(parts)} of its {expected} chunks",
                             code="artifact.missing")
        return b"".join(data for _, data in parts)

    def delete_artifact(self, digest: str) -> None:
        chunk_keys = [item["sk"]["S"] for page in pages(
            self._ddb, "query", TableName=self._table, KeyConditionExpression="pk = :pk",
            ProjectionExpression="sk", ExpressionAttributeValues=values(pk=f"ARTIFACT#{digest}"))
            for item in page.get("Items", [])]
        requests = [{"DeleteRequest": {"Key": key(pk=f"ARTIFACT#{digest}", sk=sk)}} for sk in chunk_keys]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start:start + 25])

    def attach_artifact(self, revision: int, build: Builder) -> dict[str, Any]:
        """Build and attach the artifact of revision ``revision`` if it is still the current one
        (``strategy library rebuild``); the revision number does not change."""
        current = self.revision()
        if int(current["revision"]) != revision or "pk" not in current:
            raise AgentError(f"revision {revision} is not the current one ({current['revision']})",
                             code="strategy.contention")
        active = {k: int(v) for k, v in current.get("active", {}).items()}
        pointer = self._store(build(current, active, revision), revision)
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk="LIBRARY", sk="REVISION"),
                UpdateExpression="SET artifact = :a, artifacts = :h", ConditionExpression="revision = :r",
                ExpressionAttributeValues=values(a=pointer, h=self._kept(current, pointer), r=revision))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise AgentError(f"revision {revision} moved on while its artifact was built",
                             code="strategy.contention") from None
        self._prune(current, pointer)
        return pointer

    def _store(self, built: Any, revision: int) -> dict[str, Any]:
        return {**self.put_artifact(built.payload), "revision": revision, "strategies": built.strategies,
                "inputs_sha256": built.inputs_sha256}

    @staticmethod
    def _kept(current: dict[str, Any], pointer: dict[str, Any]) -> list[dict[str, Any]]:
        earlier = [p for p in current.get("artifacts", []) if p.get("sha256") != pointer["sha256"]]
        return [pointer, *earlier][:KEEP_ARTIFACTS]

    def _prune(self, previous: dict[str, Any], pointer: dict[str, Any]) -> None:
        """Delete the artifacts that fell off the kept list (best effort: an orphan costs storage only)."""
        kept = {p["sha256"] for p in self._kept(previous, pointer)}
        for old in previous.get("artifacts", []):
            if old.get("sha256") not in kept:
                try:
                    self.delete_artifact(old["sha256"])
                except Exception:  # noqa: BLE001, S110 - retried by the next revision's prune
                    pass

    def unpublish(self, strategy_id: str, version: int) -> None:
        """Remove a draft nobody approved yet (undoing a publish); an approved version is never removed."""
        try:
            self._ddb.delete_item(TableName=self._table, Key=key(pk=f"STRATEGY#{strategy_id}", sk=f"V#{version:06d}"),
                                  ConditionExpression="approval = :p", ExpressionAttributeValues=values(p="PENDING"))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise AgentError(f"{strategy_id} v{version} is no longer a draft; not removed",
                             code="strategy.not_a_draft") from None

    def approve(self, strategy_id: str, version: int, approver: str, reason: str,
                require_other_approver: bool = False, build: Builder | None = None,
                end_canary: bool = False) -> dict[str, Any]:
        """Mark the version APPROVED and make it active, in one transaction (all or nothing)."""
        item = self.version(strategy_id, version)
        if item is None:
            raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
        if require_other_approver and item["author"] == approver:
            raise AgentError(f"{approver} published {strategy_id} v{version} and cannot also approve it",
                             code="strategy.self_approval")
        approval = {"approval": "APPROVED", "approved_by": approver, "approved_at": round(time.time(), 3),
                    "approval_reason": reason}
        return self._activate(strategy_id, version, approver, push_history=True, approval=approval, build=build,
                              end_canary=end_canary)

    def approve_many(self, items: list[dict[str, Any]], approver: str, reason: str,
                     build: Builder | None = None) -> dict[str, Any]:
        """Approve published versions (their items, as read) and make them active in ONE library
        revision. The revision (with its artifact) is written first: it is the switch of what the
        matchers serve; then the active pointers and the approval fields. Every write is idempotent,
        so a run that failed half-way is finished by running it again."""
        wanted = {item["strategy_id"]: int(item["version"]) for item in items}
        actives = self._items([key(pk=f"STRATEGY#{sid}", sk="ACTIVE") for sid in wanted])
        previous = {a["strategy_id"]: int(a["version"]) for a in actives}
        result = self.bump_revision(dict(wanted), build)
        now = round(time.time(), 3)
        puts = []
        for active in actives:
            history = [int(v) for v in active.get("history", [])]
            version = wanted[active["strategy_id"]]
            puts.append({**active, "version": version, "history": history + ([version] if version not in history else []),
                         "updated_by": approver, "updated_at": now})
        puts += [{"pk": f"STRATEGY#{sid}", "sk": "ACTIVE", "strategy_id": sid, "version": v, "history": [v],
                  "updated_by": approver, "updated_at": now} for sid, v in wanted.items() if sid not in previous]
        puts += [{**item, "approval": "APPROVED", "approved_by": approver, "approved_at": now, "approval_reason": reason}
                 for item in items]
        requests = [{"PutRequest": {"Item": to_item(p)}} for p in puts]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start:start + 25])
        return {**result, "previous": previous}

    def _items(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(self._ddb, self._table, keys, code="strategy.contention")

    def rollback(self, strategy_id: str, actor: str, to_version: int | None = None,
                 build: Builder | None = None) -> dict[str, Any]:
        target = self.rollback_target(strategy_id, to_version)
        return self._activate(strategy_id, target, actor, push_history=False, build=build)

    def rollback_target(self, strategy_id: str, to_version: int | None = None) -> int:
        """The version a rollback moves to (checked: an approved version), without changing anything."""
        active = self.active(strategy_id)
        if active is None:
            raise AgentError(f"{strategy_id} has no active version to roll back", code="strategy.not_active")
        history = [v for v in active.get("history", []) if v != active["version"]]
        target = to_version if to_version is not None else (history[-1] if history else None)
        if target is None:
            raise AgentError(f"{strategy_id} has no previous approved version", code="strategy.no_previous")
        item = self.version(strategy_id, target)
        if item is None or item.get("approval") != "APPROVED":
            raise AgentError(f"{strategy_id} v{target} is not an approved version", code="strategy.not_approved")
        return int(target)

    def snapshot(self, strategy_id: str, version: int | None = None) -> dict[str, Any]:
        """What an approve or rollback changes, as it is now (for :meth:`restore`)."""
        item = self.version(strategy_id, version) if version is not None else None
        return {"strategy_id": strategy_id, "active": self.active(strategy_id),
                "approval": {k: item.get(k) for k in APPROVAL_FIELDS} if item else None, "version": version}

    def restore(self, strategy_id: str, snapshot: dict[str, Any], expected_version: int) -> dict[str, Any]:
        """Put back what :meth:`snapshot` saw, in one transaction, unless someone moved the strategy
        on since (its active version is no longer ``expected_version``): then refuse, change nothing.
        The restored revision has no artifact of its own: matchers compile it (or serve the last good one)."""
        pk = f"STRATEGY#{strategy_id}"
        for _ in range(20):
            current = self.revision()
            active_now = self.active(strategy_id)
            if active_now is None or int(active_now["version"]) != expected_version:
                raise AgentError(f"{strategy_id} moved on meanwhile (active: "
                                 f"{active_now and active_now.get('version')}); not restored",
                                 code="strategy.moved_on")
            before = snapshot.get("active")
            ops: list[dict[str, Any]] = []
            if snapshot.get("approval") is not None and snapshot.get("version") is not None:
                restored = {k: v for k, v in snapshot["approval"].items() if v is not None}
                removed = [k for k in APPROVAL_FIELDS if k not in restored]
                names = {f"#a{i}": k for i, k in enumerate(APPROVAL_FIELDS)}
                update = "SET " + ", ".join(f"#a{APPROVAL_FIELDS.index(k)} = :a{APPROVAL_FIELDS.index(k)}"
                                            for k in restored)
                if removed:
                    update += " REMOVE " + ", ".join(f"#a{APPROVAL_FIELDS.index(k)}" for k in removed)
                ops.append({"Update": {
                    "TableName": self._table, "Key": key(pk=pk, sk=f"V#{int(snapshot['version']):06d}"),
                    "UpdateExpression": update, "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values(**{f"a{APPROVAL_FIELDS.index(k)}": v
                                                           for k, v in restored.items()}),
                    "ConditionExpression": "attribute_exists(pk)"}})
            if before:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(before),
                                    "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                    "ExpressionAttributeValues": values(v=expected_version)}})
            else:
                ops.append({"Delete": {"TableName": self._table, "Key": key(pk=pk, sk="ACTIVE"),
                                       "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                       "ExpressionAttributeValues": values(v=expected_version)}})
            new, _ = self._next_revision(current, {strategy_id: int(before["version"]) if before else None})
            ops.append(self._revision_put(current, new))
            if self._transact(ops):
                return {"strategy_id": strategy_id, "version": new["active"].get(strategy_id),
                        "revision": new["revision"]}
        raise AgentError("could not update the library revision (too much contention)", code="strategy.contention")

    def _activate(self, strategy_id: str, version: int, actor: str, push_history: bool,
                  approval: dict[str, Any] | None = None, build: Builder | None = None,
                  end_canary: bool = False) -> dict[str, Any]:
        """Approval (when given), the ACTIVE pointer and the library revision (with its artifact) in
        one transaction, retried with fresh reads when a concurrent change wins (optimistic
        concurrency). ``end_canary``: a promotion ends the strategy's canary in the same write."""
        pk = f"STRATEGY#{strategy_id}"
        for _ in range(20):
            previous = self.active(strategy_id)
            current = self.revision()
            history = list(previous.get("history", [])) if previous else []
            if push_history and version not in history:
                history.append(version)
            if not push_history:
                history = [v for v in history if v <= version] or [version]
            ops: list[dict[str, Any]] = []
            if approval:
                ops.append({"Update": {
                    "TableName": self._table, "Key": key(pk=pk, sk=f"V#{version:06d}"),
                    "UpdateExpression": "SET approval = :a, approved_by = :b, approved_at = :t, approval_reason = :r",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": values(a=approval["approval"], b=approval["approved_by"],
                                                        t=approval["approved_at"], r=approval["approval_reason"])}})
            active_item = {"pk": pk, "sk": "ACTIVE", "strategy_id": strategy_id, "version": version,
                           "history": history, "updated_by": actor, "updated_at": round(time.time(), 3)}
            if previous and previous.get("updated_at") is not None:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "updated_at = :u",
                                    "ExpressionAttributeValues": values(u=previous["updated_at"])}})
            elif previous:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                    "ExpressionAttributeValues": values(v=previous["version"])}})
            else:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "attribute_not_exists(pk)"}})
            new, pointer = self._next_revision(current, {strategy_id: version}, build,
                                               (strategy_id,) if end_canary else ())
            ops.append(self._revision_put(current, new))
            if self._transact(ops):
                if pointer is not None:
                    self._prune(current, pointer)
                return {"strategy_id": strategy_id, "version": version,
                        "previous": previous["version"] if previous else None, "revision": new["revision"],
                        "artifact": pointer}
            self._drop_unused(pointer)
        raise AgentError("could not update the library revision (too much contention)", code="strategy.contention")

    def bump_revision(self, changes: dict[str, int | None], build: Builder | None = None,
                      end_canaries: tuple[str, ...] = ()) -> dict[str, Any]:
        """Apply ``changes`` (strategy id -> active version, None to drop it) to the active map as
        the next library revision, with optimistic concurrency (see :meth:`_next_revision`)."""
        for _ in range(20):
            current = self.revision()
            new, pointer = self._next_revision(current, changes, build, end_canaries)
            if self._transact([self._revision_put(current, new)]):
                if pointer is not None:
                    self._prune(current, pointer)
                return {"revision": new["revision"], "artifact": pointer}
            self._drop_unused(pointer)
        raise AgentError("could not update the library revision (too much contention)", code="strategy.contention")

    def _next_revision(self, current: dict[str, Any], changes: dict[str, int | None], build: Builder | None = None,
                       end_canaries: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The revision item after ``current`` with ``changes`` applied, and its artifact's pointer.
        With ``build``, the artifact is built and stored first and the revision item points at it (the
        write that makes the revision visible makes its artifact visible: never one without the other).
        Running canaries carry over, except those of ``end_canaries``."""
        active = {k: int(v) for k, v in current.get("active", {}).items()}
        for strategy_id, version in changes.items():
            if version is None:
                active.pop(strategy_id, None)
            else:
                active[strategy_id] = int(version)
        number = int(current["revision"]) + 1
        new: dict[str, Any] = {"pk": "LIBRARY", "sk": "REVISION", "revision": number, "active": active}
        canaries = {k: v for k, v in (current.get("canaries") or {}).items() if k not in end_canaries}
        if canaries or "canary_seq" in current:  # running canaries carry over; ending one is a canary change
            new["canaries"] = canaries
            new["canary_seq"] = int(current.get("canary_seq", 0)) + (1 if canaries != current.get("canaries") else 0)
        pointer = None
        if build is not None:
            pointer = self._store(build(current, active, number), number)
            new["artifact"], new["artifacts"] = pointer, self._kept(current, pointer)
        elif current.get("artifacts"):
            new["artifacts"] = current["artifacts"]  # no artifact for this revision: matchers compile it
        return new, pointer

    def _revision_put(self, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """The conditional write of the next revision: nobody wrote another revision meanwhile, nor
        started or ended a canary (it would be lost)."""
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(new)}
        if current["revision"] == 0 and "pk" not in current:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        elif "canary_seq" in current:
            put["ConditionExpression"] = "revision = :r AND canary_seq = :q"
            put["ExpressionAttributeValues"] = values(r=current["revision"], q=current["canary_seq"])
        else:
            put["ConditionExpression"] = "revision = :r AND attribute_not_exists(canary_seq)"
            put["ExpressionAttributeValues"] = values(r=current["revision"])
        return {"Put": put}

    def _drop_unused(self, pointer: dict[str, Any] | None) -> None:
        """Delete an artifact built for a revision that lost the race, unless a revision points at it."""
        if pointer is not None and pointer["sha256"] not in {
                p.get("sha256") for p in self.revision().get("artifacts", [])}:
            self.delete_artifact(pointer["sha256"])

    def _transact(self, ops: list[dict[str, Any]]) -> bool:
        """TransactWriteItems; False when a condition failed (someone changed an item meanwhile)."""
        try:
            self._ddb.transact_write_items(TransactItems=ops)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) not in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise
            return False
        return True

    # -- canary runs --------------------------------------------------------------------------------
    def start_canary(self, strategy_id: str, entry: dict[str, Any], run: dict[str, Any]) -> None:
        """Put the run item and add ``entry`` to the revision's running canaries, in one transaction:
        refused (``strategy.canary_running``) when the strategy already has a running canary."""
        current = self.revision()
        has_map = isinstance(current.get("canaries"), dict)
        names = {"#c": "canaries", "#s": strategy_id, "#q": "canary_seq"}
        if has_map:
            update = "SET #c.#s = :e, #q = if_not_exists(#q, :zero) + :one"
            condition = "attribute_exists(pk) AND attribute_not_exists(#c.#s)"
            vals = values(e=entry, zero=0, one=1)
        else:  # a revision written before canaries existed: the map is created with its first entry
            update = "SET #c = :m, #q = if_not_exists(#q, :zero) + :one"
            condition = "attribute_exists(pk) AND attribute_not_exists(#c)"
            vals = values(m={strategy_id: entry}, zero=0, one=1)
            names.pop("#s")
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "Item": to_item(run), "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": self._table, "Key": key(pk="LIBRARY", sk="REVISION"),
                            "UpdateExpression": update, "ConditionExpression": condition,
                            "ExpressionAttributeNames": names, "ExpressionAttributeValues": vals}}])
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "TransactionCanceledException":
                raise
            raise AgentError(f"{strategy_id} already has a running canary, or the library changed meanwhile; "
                             "look again with `strategy canary status`", code="strategy.canary_running") from None

    def end_canary(self, strategy_id: str, run_key: str, status: str, fields: dict[str, Any]) -> bool:
        """Mark the run ``status`` (ABORTED / PROMOTED) and remove it from the revision's running
        canaries, in one transaction, only if it is still running: exactly one caller ends a canary
        (False for the others)."""
        names = {"#c": "canaries", "#s": strategy_id, "#q": "canary_seq", "#st": "status"}
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        run_names = {"#st": "status", **{f"#f{i}": name for i, name in enumerate(fields)}}
        run_values = values(s=status, running="RUNNING", **{f"f{i}": v for i, v in enumerate(fields.values())})
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": self._table, "Key": key(pk=f"CANARY#{strategy_id}", sk=run_key),
                            "UpdateExpression": "SET #st = :s" + (f", {sets}" if sets else ""),
                            "ConditionExpression": "#st = :running", "ExpressionAttributeNames": run_names,
                            "ExpressionAttributeValues": run_values}},
                {"Update": {"TableName": self._table, "Key": key(pk="LIBRARY", sk="REVISION"),
                            "UpdateExpression": "REMOVE #c.#s SET #q = #q + :one",
                            "ConditionExpression": "#c.#s.#run = :run",
                            "ExpressionAttributeNames": {k: v for k, v in names.items() if k != "#st"} | {"#run": "run"},
                            "ExpressionAttributeValues": values(one=1, run=run_key)}}])
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    def mark_canary(self, strategy_id: str, run_key: str, status: str, fields: dict[str, Any]) -> bool:
        """Set a running run's final ``status`` when the revision no longer lists it (a promotion
        removes it with the revision write); False when the run had ended already."""
        sets = "".join(f", #f{i} = :f{i}" for i in range(len(fields)))
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=f"CANARY#{strategy_id}", sk=run_key),
                UpdateExpression="SET #st = :s" + sets, ConditionExpression="#st = :running",
                ExpressionAttributeNames={"#st": "status", **{f"#f{i}": name for i, name in enumerate(fields)}},
                ExpressionAttributeValues=values(s=status, running="RUNNING",
                                                 **{f"f{i}": v for i, v in enumerate(fields.values())}))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def tally_canary(self, strategy_id: str, run_key: str, deltas: dict[str, float]) -> dict[str, Any] | None:
        """Add ``deltas`` (counter attribute -> amount) to a running run's tallies; the run item after
        the update, or None when the run is not running any more (its tallies are final)."""
        deltas = {k: v for k, v in deltas.items() if v}
        if not deltas:
            return self.canary_run(strategy_id, run_key)
        names = {f"#a{i}": name for i, name in enumerate(deltas)}
        try:
            out = self._ddb.update_item(
                TableName=self._table, Key=key(pk=f"CANARY#{strategy_id}", sk=run_key),
                UpdateExpression="SET " + ", ".join(f"#a{i} = #a{i} + :a{i}" for i in range(len(deltas))),
                ConditionExpression="#st = :running",
                ExpressionAttributeNames={**names, "#st": "status"},
                ExpressionAttributeValues=values(running="RUNNING", **{f"a{i}": v for i, v in enumerate(deltas.values())}),
                ReturnValues="ALL_NEW")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return from_item(out.get("Attributes"))

    def canary_run(self, strategy_id: str, run_key: str) -> dict[str, Any] | None:
        return self._get(f"CANARY#{strategy_id}", run_key)

    def canary_runs(self, strategy_id: str) -> list[dict[str, Any]]:
        """Every canary run of the strategy, oldest first."""
        return list(all_items(self._ddb, "query", TableName=self._table, ConsistentRead=True,
                              KeyConditionExpression="pk = :pk AND begins_with(sk, :r)",
                              ExpressionAttributeValues=values(pk=f"CANARY#{strategy_id}", r="RUN#")))

    def version_items(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        """Many versions at once (BatchGetItem, 100 a request): (id, version) -> item; absent ones left out."""
        keys = [key(pk=f"STRATEGY#{sid}", sk=f"V#{int(v):06d}") for sid, v in dict.fromkeys(wanted)]
        return {(item["strategy_id"], int(item["version"])): item for item in self._items(keys)}

    def documents(self, active: dict[str, int]) -> list[tuple[str, str]]:
        docs = []
        for strategy_id, version in sorted(active.items()):
            item = self.version(strategy_id, int(version))
            if item is None:
                raise AgentError(f"active version {strategy_id} v{version} is missing", code="strategy.missing_version")
            docs.append((f"{strategy_id}@v{version}", item["yaml"]))
        return docs

    # feature flags for the embedded runtime (AppConfig holds them on AWS)
    def flags(self) -> dict[str, Any] | None:
        item = self._get("FLAGS", "CURRENT")
        return item.get("flags") if item else None

    def put_flags(self, flags: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._table, Item=to_item({"pk": "FLAGS", "sk": "CURRENT", "flags": flags}))
