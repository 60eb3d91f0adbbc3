"""Workflow, node, callback and review items in ``agent_workflows`` (docs/architecture.md).

Status only moves forward: every transition is a conditional update naming the statuses it may
come from, so a late retry or a duplicate callback can never move a finished node back.

The one documented exception is manual takeover (``powerx_agent.ops.workflow``,
docs/operations-takeover.md): a retry starts a new *attempt generation*. ``begin_generation`` and
``reset_node`` move a terminal workflow / node back to RUNNING / PENDING only for a generation
number higher than the one recorded on the item (conditional), keep what the previous generation
ended with in ``history``, and the caller audits every such move. ``fill_node`` records an outcome
done by hand (SUCCEEDED with ``filled_by``) from any status but SUCCEEDED.

A node has no item until its first transition: a PENDING node is one that META's ``node_ids`` names and
that has no item yet (``get`` and ``get_node`` give it as an *implicit* item, ``implicit: True``). Every
move a node may make starts from PENDING, so a node's first transition is the same conditional update with
"no item yet" as one of the states it may come from. (Writing a PENDING item per node at creation cost one
write per node per event, for items that said nothing META does not: docs/write-path.md.)
"""

from __future__ import annotations

import time
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, batch_get, fan_out, from_item, key, pages, to_item, values
from powerx_agent.audit.shards import tenant_key, tenant_keys, tenant_shard_keys
from powerx_agent.errors import AgentError
from powerx_agent.status import NODE_FROM, WORKFLOW_FROM, WORKFLOW_TERMINAL, NodeStatus, WorkflowStatus


def wf_pk(workflow_id: str) -> str:
    return f"WF#{workflow_id}"


def node_identity(workflow_id: str, node_id: str) -> dict[str, str]:
    """The attributes a node item is created with by its first write."""
    return {"node_id": node_id, "workflow_id": workflow_id}


def unmoved_or(condition: str) -> str:
    """A node item's update condition that also holds for a node with no item yet (PENDING)."""
    return f"(attribute_not_exists(pk) OR {condition})"


def with_implicit_nodes(meta: dict[str, Any], items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``items`` (node id -> item) plus an implicit PENDING item for each node META names that has none."""
    workflow_id = str(meta.get("workflow_id"))
    implicit = {node_id: {"pk": wf_pk(workflow_id), "sk": f"NODE#{node_id}", **node_identity(workflow_id, node_id),
                          "status": NodeStatus.PENDING.value, "attempts": 0, "implicit": True}
                for node_id in meta.get("node_ids") or () if node_id not in items}
    return {**items, **implicit}


class WorkflowsStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    # -- workflows ---------------------------------------------------------------------------
    def create(self, meta: dict[str, Any], node_ids: list[str], skipped: dict[str, str] | None = None) -> bool:
        """Write a SKIPPED item (with its reason) for each node in ``skipped``, then META naming every node
        in ``node_ids``; False when the workflow already exists. The other nodes are PENDING without an
        item (see the module's docstring).

        The skipped nodes go first and META last, each put conditional: a crash in between leaves items
        that the redelivery finds in place (their puts are no-ops) before it writes META, so a workflow
        never exists without its skipped nodes, and a redelivery never resets a node that has moved on.
        A skipped node keeps an item because SKIPPED is terminal: the conditional update of a node's
        first transition can only see the node's own item, not META."""
        now = round(time.time(), 3)
        item = {"pk": wf_pk(meta["workflow_id"]), "sk": "META", "status": "PENDING", "created_at": now,
                "tpk": tenant_key(meta["tenant_id"], meta["workflow_id"]),
                "tsk": f"{now:017.3f}#{meta['workflow_id']}", "node_ids": list(node_ids), **meta}
        for node_id, reason in (skipped or {}).items():
            if node_id in node_ids:
                self.ensure_node(meta["workflow_id"], node_id, skipped=reason)
        return self._put_new(item)

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Put ``item`` unless its key is taken: False when it was (nothing is changed then)."""
        try:
            self._ddb.put_item(TableName=self._table, Item=to_item(item),
                               ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:  # noqa: BLE001 - only the condition failure is an answer
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def ensure_node(self, workflow_id: str, node_id: str, skipped: str | None = None) -> None:
        item = {"pk": wf_pk(workflow_id), "sk": f"NODE#{node_id}", "node_id": node_id, "workflow_id": workflow_id,
                "status": "PENDING", "attempts": 0}
        if skipped:
            item.update(status="SKIPPED", reason=skipped, updated_at=round(time.time(), 3))
        self._put_new(item)  # a node that exists already has moved on: left as it is

    def update_meta(self, workflow_id: str, unless: str | None = None, **fields: Any) -> None:
        """SET ``fields`` on META; with ``unless``, only while META has no attribute of that name."""
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        vals = {f"v{i}": v for i, v in enumerate(fields.values())}
        extra: dict[str, Any] = {}
        if unless:
            names["#u"] = unless
            extra["ConditionExpression"] = "attribute_not_exists(#u)"
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=wf_pk(workflow_id), sk="META"),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values(**vals), **extra)
        except Exception as exc:  # noqa: BLE001
            if not unless or error_code(exc) != "ConditionalCheckFailedException":
                raise

    def hand_off(self, workflow_id: str, **fields: Any) -> bool:
        """Record that a RUNNING workflow continues on another execution (an Express head's Standard
        continuation): once; False when it was recorded already or the workflow is no longer running."""
        fields = {k: v for k, v in fields.items() if v is not None}
        names = {"#s": "status", "#h": "handed_off_at", **{f"#f{i}": k for i, k in enumerate(fields)}}
        vals = values(running="RUNNING", pending="PENDING", now=round(time.time(), 3),
                      **{f"v{i}": v for i, v in enumerate(fields.values())})
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=wf_pk(workflow_id), sk="META"),
                UpdateExpression="SET #s = :running, #h = :now, updated_at = :now"
                                 + "".join(f", #f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression="#s IN (:pending, :running) AND attribute_not_exists(#h)",
                ExpressionAttributeNames=names, ExpressionAttributeValues=vals)
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def transition_workflow(self, workflow_id: str, status: WorkflowStatus | str, **fields: Any) -> bool:
        status = WorkflowStatus(status)
        return self._transition(wf_pk(workflow_id), "META", status, WORKFLOW_FROM[status], fields)

    def transition_node(self, workflow_id: str, node_id: str, status: NodeStatus | str, **fields: Any) -> bool:
        """Move a node forward; its first move (from PENDING, which every move allows) creates its item."""
        status = NodeStatus(status)
        return self._transition(wf_pk(workflow_id), f"NODE#{node_id}", status, NODE_FROM[status],
                                {**fields, **node_identity(workflow_id, node_id)}, may_create=True)

    def _transition(self, pk: str, sk: str, status: str, allowed_from: tuple[str, ...],
                    fields: dict[str, Any], may_create: bool = False) -> bool:
        fields = {k: v for k, v in fields.items() if v is not None}
        sets = ["#s = :status", "updated_at = :now"]
        names = {"#s": "status"}
        vals: dict[str, Any] = {"status": status, "now": round(time.time(), 3)}
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            vals[f"v{i}"] = value
            sets.append(f"#f{i} = :v{i}")
        for i, prev in enumerate(allowed_from):
            vals[f"from{i}"] = prev
        statuses = "#s IN (" + ", ".join(f":from{i}" for i in range(len(allowed_from))) + ")"
        condition = unmoved_or(statuses) if may_create else f"attribute_exists(pk) AND {statuses}"
        try:
            self._ddb.update_item(TableName=self._table, Key=key(pk=pk, sk=sk),
                                  UpdateExpression="SET " + ", ".join(sets), ConditionExpression=condition,
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values(**vals))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def get(self, workflow_id: str, consistent: bool = True) -> dict[str, Any] | None:
        """META plus ``nodes`` (by node id); ``consistent=False`` for a reader that needs only what never
        changes once written (half the read units)."""
        out = self._ddb.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues=values(pk=wf_pk(workflow_id)), ConsistentRead=consistent)
        items = [from_item(i) for i in out.get("Items", [])]
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        meta["nodes"] = with_implicit_nodes(meta, {i["node_id"]: i for i in items if i["sk"].startswith("NODE#")})
        return meta

    def list_workflows(self, tenant_id: str | None = None, limit: int = 100,
                       since: float | None = None) -> list[dict[str, Any]]:
        """METAs, newest first; ``since``: created at or after (epoch seconds).

        By tenant, two layouts are read and merged, nothing migrated: ``by_tenant`` (keys only: ``tpk`` /
        ``tsk``, every workflow created since the index exists) and ``gsi1`` (all attributes: ``gsi1pk`` /
        ``gsi1sk``, workflows created before, under the sharded key or ``WF#<tenant>``). The newest ``limit``
        entries of every shard of both are merged, the newest ``limit`` of them kept, and the METAs that
        ``by_tenant`` names only by key are read with BatchGetItem (docs/write-path.md, "No hot key")."""
        if tenant_id:
            return self._list_tenant(tenant_id, limit, since)
        items = [i for i in self._scan(filter_sk="META")
                 if since is None or float(i.get("created_at") or 0) >= since]
        return sorted(items, key=lambda i: i.get("created_at", 0), reverse=True)[:limit]

    def _list_tenant(self, tenant_id: str, limit: int, since: float | None) -> list[dict[str, Any]]:
        # by_tenant gives keys (pk, sk, tpk, tsk), gsi1 whole METAs (which have no tsk)
        entries = self._newest("by_tenant", "tpk", "tsk", tenant_shard_keys(tenant_id), limit, since) \
            + self._newest("gsi1", "gsi1pk", "gsi1sk", tenant_keys(tenant_id), limit, since)
        newest = sorted(entries, key=lambda e: str(e.get("tsk") or e.get("gsi1sk")), reverse=True)[:limit]
        wanted = [key(pk=e["pk"], sk=e["sk"]) for e in newest if "tsk" in e]
        metas = {m["pk"]: m for m in batch_get(self._ddb, self._table, wanted, consistent=False)}
        found = [metas.get(e["pk"]) if "tsk" in e else e for e in newest]
        return [m for m in found if m is not None]  # a META deleted between the two reads is left out

    def _newest(self, index: str, pk_name: str, sk_name: str, partitions: list[str], limit: int,
                since: float | None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries of each partition of a tenant index, unordered."""
        condition, bound = f"{pk_name} = :p", {}
        if since is not None:
            condition, bound = condition + f" AND {sk_name} >= :s", {"s": f"{since:017.3f}"}
        queries = [{"KeyConditionExpression": condition, "ExpressionAttributeValues": values(p=partition, **bound),
                    "ScanIndexForward": False} for partition in partitions]
        return fan_out(self._ddb, self._table, index, queries, limit=limit)

    def _scan(self, filter_sk: str) -> list[dict[str, Any]]:
        return [i for i in all_items(self._ddb, "scan", TableName=self._table, FilterExpression="sk = :sk",
                                     ExpressionAttributeValues=values(sk=filter_sk))
                if i.get("pk", "").startswith("WF#")]

    # -- callbacks (task tokens kept server side) -------------------------------------------
    def put_callback(self, callback_id: str, *, task_token: str, workflow_id: str, node_id: str,
                     kind: str, expires_at: float) -> None:
        item = {"pk": f"CB#{callback_id}", "sk": "META", "callback_id": callback_id, "task_token": task_token,
                "workflow_id": workflow_id, "node_id": node_id, "kind": kind, "status": "OPEN",
                "created_at": round(time.time(), 3), "expires_at": int(expires_at)}
        self._ddb.put_item(TableName=self._table, Item=to_item(item))

    def get_callback(self, callback_id: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=f"CB#{callback_id}", sk="META"),
                                 ConsistentRead=True)
        return from_item(out.get("Item"))

    def close_callback(self, callback_id: str, outcome: str) -> bool:
        """OPEN → CLOSED exactly once; False if it was already closed (a duplicate callback)."""
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=f"CB#{callback_id}", sk="META"),
                UpdateExpression="SET #s = :closed, outcome = :o, closed_at = :t",
                ConditionExpression="#s = :open", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(closed="CLOSED", o=outcome, open="OPEN", t=round(time.time(), 3)))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    # -- closing a callback or a review: claim, do the work, finish (or release) -----------------
    def claim(self, pk: str, outcome: str, stale_seconds: float = 120.0) -> bool:
        """OPEN → CLOSING with ``outcome``: the one caller that gets True does the work, then calls
        :meth:`finish_claim` (CLOSING → CLOSED) or, when the work failed, :meth:`release_claim`
        (back to OPEN, so the caller's retry can close it). A claim left CLOSING (the release itself
        failed) is taken over by a retry with the same outcome, or by any outcome once stale."""
        now = round(time.time(), 3)
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=pk, sk="META"),
                UpdateExpression="SET #s = :closing, outcome = :o, claimed_at = :t",
                ConditionExpression="#s = :open OR (#s = :closing AND (outcome = :o OR claimed_at < :stale))",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(closing="CLOSING", open="OPEN", o=outcome, t=now,
                                                 stale=now - stale_seconds))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def finish_claim(self, pk: str, outcome: str, remove: tuple[str, ...] = (), **fields: Any) -> None:
        names = {"#s": "status", **{f"#f{i}": k for i, k in enumerate(fields)}}
        sets = ["#s = :closed", "closed_at = :t"] + [f"#f{i} = :v{i}" for i in range(len(fields))]
        vals = values(closed="CLOSED", closing="CLOSING", o=outcome, t=round(time.time(), 3),
                      **{f"v{i}": v for i, v in enumerate(fields.values())})
        self._ddb.update_item(
            TableName=self._table, Key=key(pk=pk, sk="META"),
            UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(remove) if remove else ""),
            ConditionExpression="#s = :closing AND outcome = :o", ExpressionAttributeNames=names,
            ExpressionAttributeValues=vals)

    def release_claim(self, pk: str, outcome: str) -> None:
        self._ddb.update_item(
            TableName=self._table, Key=key(pk=pk, sk="META"), UpdateExpression="SET #s = :open REMOVE outcome, claimed_at",
            ConditionExpression="#s = :closing AND outcome = :o", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values(open="OPEN", closing="CLOSING", o=outcome))

    # -- manual review tasks ---------------------------------------------------------------
    def put_review(self, review: dict[str, Any]) -> bool:
        """Create an OPEN review; False when it already exists (a retried escalation)."""
        now = round(time.time(), 3)
        item = {"pk": f"REVIEW#{review['review_id']}", "sk": "META", "status": "OPEN", "created_at": now,
                "gsi1pk": "REVIEW#OPEN", "gsi1sk": f"{now:017.3f}#{review['review_id']}", **review}
        return self._put_new(item)

    def get_review(self, review_id: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=f"REVIEW#{review_id}", sk="META"),
                                 ConsistentRead=True)
        return from_item(out.get("Item"))

    def close_review(self, review_id: str, outcome: str, by: str, reason: str | None) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=f"REVIEW#{review_id}", sk="META"),
                UpdateExpression="SET #s = :closed, outcome = :o, closed_by = :b, closed_at = :t, reason = :r "
                                 "REMOVE gsi1pk, gsi1sk",
                ConditionExpression="#s = :open", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(closed="CLOSED", o=outcome, b=by, r=reason or "",
                                                 open="OPEN", t=round(time.time(), 3)))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def open_reviews(self, limit: int = 500) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in pages(self._ddb, "query", TableName=self._table, IndexName="gsi1",
                          KeyConditionExpression="gsi1pk = :p", ExpressionAttributeValues=values(p="REVIEW#OPEN")):
            items += [from_item(i) for i in page.get("Items", [])]
            if len(items) >= limit:
                break
        return items[:limit]

    def mark_review(self, review_id: str, flag: str) -> None:
        self._ddb.update_item(TableName=self._table, Key=key(pk=f"REVIEW#{review_id}", sk="META"),
                              UpdateExpression="SET #f = :t", ExpressionAttributeNames={"#f": flag},
                              ExpressionAttributeValues=values(t=round(time.time(), 3)))

    # -- manual takeover: attempt generations (the documented exception to forward-only) -----
    def get_node(self, workflow_id: str, node_id: str) -> dict[str, Any] | None:
        """The node's item; its implicit PENDING item when META names it and it has none yet."""
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=wf_pk(workflow_id), sk=f"NODE#{node_id}"),
                                 ConsistentRead=True)
        item = from_item(out.get("Item"))
        if item is not None:
            return item
        meta = from_item(self._ddb.get_item(TableName=self._table, Key=key(pk=wf_pk(workflow_id), sk="META"),
                                            ConsistentRead=True).get("Item"))
        return with_implicit_nodes(meta, {}).get(node_id) if meta else None

    def begin_generation(self, workflow_id: str, generation: int, previous: dict[str, Any],
                         **fields: Any) -> bool:
        """A terminal workflow → RUNNING for attempt ``generation`` (only if it is higher than the
        recorded one); ``previous`` (what the last generation ended with) goes to ``history``."""
        return self._new_generation(wf_pk(workflow_id), "META", "RUNNING", generation, previous, fields,
                                    remove=("finished_at", "failure", "escalation_reason"),
                                    allowed_from=tuple(sorted(WORKFLOW_TERMINAL)))

    def reset_node(self, workflow_id: str, node_id: str, generation: int, previous: dict[str, Any],
                   **fields: Any) -> bool:
        """A node → PENDING for attempt ``generation`` (attempts restart at 0); ``previous`` goes to
        ``history``."""
        return self._new_generation(wf_pk(workflow_id), f"NODE#{node_id}", "PENDING", generation, previous,
                                    {"attempts": 0, **fields, **node_identity(workflow_id, node_id)},
                                    remove=("error", "last_error", "output", "duration", "reason", "filled_by",
                                            "filled_from", "filled_at"), allowed_from=None)

    def _new_generation(self, pk: str, sk: str, status: str, generation: int, previous: dict[str, Any],
                        fields: dict[str, Any], remove: tuple[str, ...],
                        allowed_from: tuple[str, ...] | None) -> bool:
        fields = {k: v for k, v in fields.items() if v is not None}
        names = {"#s": "status", "#g": "generation", "#h": "history"}
        vals: dict[str, Any] = {"status": status, "gen": generation, "now": round(time.time(), 3),
                                "prev": [{k: v for k, v in previous.items() if v is not None}], "empty": []}
        sets = ["#s = :status", "#g = :gen", "updated_at = :now", "#h = list_append(if_not_exists(#h, :empty), :prev)"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            vals[f"v{i}"] = value
            sets.append(f"#f{i} = :v{i}")
        removes = [name for name in remove if name not in fields]
        for i, name in enumerate(removes):
            names[f"#r{i}"] = name
        # a node without an item (PENDING, never moved) gets one; META always exists
        condition = "(attribute_not_exists(#g) OR #g < :gen)" if sk != "META" else \
            "attribute_exists(pk) AND (attribute_not_exists(#g) OR #g < :gen)"
        if allowed_from:
            for i, prev in enumerate(allowed_from):
                vals[f"from{i}"] = prev
            condition += " AND #s IN (" + ", ".join(f":from{i}" for i in range(len(allowed_from))) + ")"
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        try:
            self._ddb.update_item(TableName=self._table, Key=key(pk=pk, sk=sk), UpdateExpression=expression,
                                  ConditionExpression=condition, ExpressionAttributeNames=names,
                                  ExpressionAttributeValues=values(**vals))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def put_back(self, item: dict[str, Any], generation: int) -> None:
        """Undo a move to attempt ``generation`` (:meth:`begin_generation`, :meth:`reset_node`): put the
        item back as it was read (an implicit node: no item again), unless it moved on since (its generation
        is no longer ``generation``)."""
        stored = {k: v for k, v in item.items() if k != "nodes"}
        condition = {"ConditionExpression": "#g = :gen", "ExpressionAttributeNames": {"#g": "generation"},
                     "ExpressionAttributeValues": values(gen=generation)}
        try:
            if stored.get("implicit"):
                self._ddb.delete_item(TableName=self._table, Key=key(pk=stored["pk"], sk=stored["sk"]), **condition)
            else:
                self._ddb.put_item(TableName=self._table, Item=to_item(stored), **condition)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise AgentError(f"{stored.get('pk')} / {stored.get('sk')} moved on from generation {generation}; "
                             "not put back", code="takeover.moved_on") from None

    def restore_node(self, item: dict[str, Any], status: str) -> None:
        """Undo a move of a node item away from ``status`` made by this command (put the item back as read;
        an implicit node has no item again)."""
        try:
            if item.get("implicit"):
                self._ddb.delete_item(TableName=self._table, Key=key(pk=item["pk"], sk=item["sk"]),
                                      ConditionExpression="attribute_exists(pk)")
            else:
                self._ddb.put_item(TableName=self._table, Item=to_item(item), ConditionExpression="attribute_exists(pk)")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise AgentError(f"node {item.get('node_id')} is gone; not put back to {status}",
                             code="takeover.moved_on") from None

    def fill_node(self, workflow_id: str, node_id: str, output: Any, by: str, filled_from: str) -> bool:
        """Record an outcome done by hand: SUCCEEDED with ``filled_by``, from any status but
        SUCCEEDED (conditional on the status the caller saw, so two operators cannot both fill; PENDING:
        the node may have no item yet)."""
        seen = unmoved_or("#s = :from_") if filled_from == NodeStatus.PENDING else "attribute_exists(pk) AND #s = :from_"
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=wf_pk(workflow_id), sk=f"NODE#{node_id}"),
                UpdateExpression="SET #s = :ok, #o = :out, filled_by = :by, filled_from = :from_, "
                                 "filled_at = :now, updated_at = :now, node_id = :nid, workflow_id = :wid",
                ConditionExpression=seen,
                ExpressionAttributeNames={"#s": "status", "#o": "output"},
                ExpressionAttributeValues=values(ok="SUCCEEDED", out=output, by=by, from_=filled_from,
                                                 now=round(time.time(), 3), nid=node_id, wid=workflow_id))
            return True
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False

    def open_reviews_for(self, workflow_id: str) -> list[dict[str, Any]]:
        return [r for r in self.open_reviews(limit=10_000) if r.get("workflow_id") == workflow_id]

    def count_open_reviews(self) -> int:
        """Exact number of OPEN review items (the backlog gauge), counted over every page."""
        return sum(int(page.get("Count", 0)) for page in pages(
            self._ddb, "query", TableName=self._table, IndexName="gsi1", Select="COUNT",
            KeyConditionExpression="gsi1pk = :p", ExpressionAttributeValues=values(p="REVIEW#OPEN")))
