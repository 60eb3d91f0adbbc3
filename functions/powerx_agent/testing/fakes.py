"""In-memory fakes of the adapters (same interfaces as ``powerx_agent.adapters``), for unit tests and
for the benchmarks (``bench/product_cost.py``).

Each fake keeps the semantics the logic relies on (conditional creates, forward-only transitions,
idempotency claims with lease/conflict/duplicate, hash-chained audit records) but answers from
dicts in memory, so the product's own CPU per event can be measured without moto or AWS.

    deps = FakeDeps.create()          # tenants from config/tenants.yaml, strategies from strategies/
    Ingestor(deps, deps.metrics()).handle(bus_event)
    for body in deps.queues.drain(deps.settings.match_queue_url):
        Matcher(deps, deps.metrics()).handle(MatchMessage.parse(body).to_dict())
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from powerx_agent import spec
from powerx_agent.adapters.events_store import Claim, event_pk
from powerx_agent.adapters.flags import DynamoFlagStore, Flags
from powerx_agent.adapters.metrics import MetricsRecorder
from powerx_agent.adapters.state_machines import Started, state_machine_arn
from powerx_agent.adapters.workflows_store import node_identity, with_implicit_nodes
from powerx_agent.audit.records import GENESIS, AuditEntry, seal
from powerx_agent.audit.shards import tenant_key
from powerx_agent.clock import SYSTEM_CLOCK, AdjustableClock, Clock
from powerx_agent.errors import AgentError
from powerx_agent.settings import Settings, load_settings
from powerx_agent.status import NODE_FROM, WORKFLOW_FROM

REPO = Path(__file__).resolve().parents[3]  # the checkout: config/tenants.yaml, strategies/
ACCOUNT = "123456789012"
REGION = "us-east-1"


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


# ---------------------------------------------------------------------------------------- stores
class FakeEventsStore:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock  # leases and record expiry, as EventsStore
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str, idempotency_key: str) -> dict[str, Any] | None:
        item = self.items.get(event_pk(tenant_id, idempotency_key))
        return dict(item) if item else None

    def claim(self, *, tenant_id: str, idempotency_key: str, payload_hash: str, event_id: str,
              workflow_id: str, event_type: str, lease_seconds: float, ttl_seconds: float,
              now: float | None = None) -> Claim:
        now = now if now is not None else self.clock.time()
        pk = event_pk(tenant_id, idempotency_key)
        with self._lock:
            existing = self.items.get(pk)
            if existing is None or existing["expires_at"] < int(now):
                record = {"pk": pk, "tenant_id": tenant_id, "idempotency_key": idempotency_key, "event_id": event_id,
                          "event_type": event_type, "payload_hash": payload_hash, "status": "IN_PROGRESS",
                          "workflow_id": workflow_id, "lease_until": round(now + lease_seconds, 3),
                          "expires_at": int(now + ttl_seconds), "first_seen": round(now, 3), "attempts": 1}
                self.items[pk] = record
                return Claim("new", dict(record))
            if existing.get("payload_hash") != payload_hash:
                return Claim("conflict", dict(existing))
            if existing.get("status") != "IN_PROGRESS":
                return Claim("duplicate", dict(existing))
            if float(existing.get("lease_until", 0)) > now:
                return Claim("in_progress", dict(existing))
            existing["lease_until"] = round(now + lease_seconds, 3)
            existing["attempts"] = int(existing.get("attempts", 1)) + 1
            return Claim("takeover", dict(existing))

    def finish(self, tenant_id: str, idempotency_key: str, *, status: str, outcome: str,
               strategy_id: str | None = None, event_json: str | None = None) -> None:
        with self._lock:
            item = self.items.get(event_pk(tenant_id, idempotency_key))
            if item is None or item.get("status") != "IN_PROGRESS":
                return
            item.update(status=status, outcome=outcome, finished_at=round(self.clock.time(), 3))
            item.pop("lease_until", None)
            if strategy_id:
                item["strategy_id"] = strategy_id
            if event_json is not None:
                item["event_json"] = event_json

    def reopen(self, tenant_id: str, idempotency_key: str) -> None:
        with self._lock:
            item = self.items.get(event_pk(tenant_id, idempotency_key))
            if item is None or item.get("status") != "DEFERRED":
                raise _client_error("ConditionalCheckFailedException", "not deferred", "UpdateItem")
            item.update(status="IN_PROGRESS", lease_until=0)

    def scan(self) -> list[dict[str, Any]]:
        return [dict(i) for i in self.items.values()]


class FakeWorkflowsStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, meta: dict[str, Any], node_ids: list[str], skipped: dict[str, str] | None = None) -> bool:
        pk = f"WF#{meta['workflow_id']}"
        with self._lock:
            if (pk, "META") in self.items:
                return False
            now = round(time.time(), 3)
            self.items[(pk, "META")] = {"pk": pk, "sk": "META", "status": "PENDING", "created_at": now,
                                        "tpk": tenant_key(meta["tenant_id"], meta["workflow_id"]),
                                        "tsk": f"{now:017.3f}#{meta['workflow_id']}", "node_ids": list(node_ids),
                                        **meta}
        for node_id, reason in (skipped or {}).items():  # the other nodes have no item until they move
            if node_id in node_ids:
                self.ensure_node(meta["workflow_id"], node_id, skipped=reason)
        return True

    def ensure_node(self, workflow_id: str, node_id: str, skipped: str | None = None) -> None:
        item = {"pk": f"WF#{workflow_id}", "sk": f"NODE#{node_id}", "node_id": node_id, "workflow_id": workflow_id,
                "status": "PENDING", "attempts": 0}
        if skipped:
            item.update(status="SKIPPED", reason=skipped)
        with self._lock:
            self.items.setdefault((f"WF#{workflow_id}", f"NODE#{node_id}"), item)

    def update_meta(self, workflow_id: str, unless: str | None = None, **fields: Any) -> None:
        with self._lock:
            meta = self.items.setdefault((f"WF#{workflow_id}", "META"), {"pk": f"WF#{workflow_id}", "sk": "META"})
            if unless and unless in meta:
                return
            meta.update(fields)

    def hand_off(self, workflow_id: str, **fields: Any) -> bool:
        with self._lock:
            meta = self.items.get((f"WF#{workflow_id}", "META"))
            if meta is None or meta.get("status") not in ("PENDING", "RUNNING") or "handed_off_at" in meta:
                return False
            meta.update({k: v for k, v in fields.items() if v is not None}, status="RUNNING",
                        handed_off_at=round(time.time(), 3))
            return True

    def transition_workflow(self, workflow_id: str, status: str, **fields: Any) -> bool:
        return self._transition((f"WF#{workflow_id}", "META"), status, WORKFLOW_FROM[status], fields)

    def transition_node(self, workflow_id: str, node_id: str, status: str, **fields: Any) -> bool:
        key = (f"WF#{workflow_id}", f"NODE#{node_id}")
        with self._lock:  # a node's first move creates its item, as in the real store
            if key not in self.items:
                self.items[key] = {"pk": key[0], "sk": key[1], **node_identity(workflow_id, node_id),
                                   "status": "PENDING", "attempts": 0}
        return self._transition(key, status, NODE_FROM[status], fields)

    def _transition(self, key: tuple[str, str], status: str, allowed_from: tuple[str, ...],
                    fields: dict[str, Any]) -> bool:
        with self._lock:
            item = self.items.get(key)
            if item is None or item.get("status") not in allowed_from:
                return False
            item.update({k: v for k, v in fields.items() if v is not None}, status=str(status),
                        updated_at=round(time.time(), 3))
            return True

    def get(self, workflow_id: str, consistent: bool = True) -> dict[str, Any] | None:
        pk = f"WF#{workflow_id}"
        meta = self.items.get((pk, "META"))
        if meta is None:
            return None
        out = dict(meta)
        out["nodes"] = with_implicit_nodes(out, {i["node_id"]: dict(i) for (p, s), i in self.items.items()
                                                 if p == pk and s.startswith("NODE#")})
        return out

    def list_workflows(self, tenant_id: str | None = None, limit: int = 100,
                       since: float | None = None) -> list[dict[str, Any]]:
        metas = [dict(i) for (p, s), i in self.items.items() if s == "META" and p.startswith("WF#")
                 and (tenant_id is None or i.get("tenant_id") == tenant_id)
                 and (since is None or float(i.get("created_at") or 0) >= since)]
        # newest first, ties by workflow id: the order of the tenant index's sort key
        return sorted(metas, key=lambda i: (i.get("created_at", 0), str(i.get("workflow_id"))), reverse=True)[:limit]

    def put_callback(self, callback_id: str, *, task_token: str, workflow_id: str, node_id: str,
                     kind: str, expires_at: float) -> None:
        self.items[(f"CB#{callback_id}", "META")] = {
            "callback_id": callback_id, "task_token": task_token, "workflow_id": workflow_id, "node_id": node_id,
            "kind": kind, "status": "OPEN", "created_at": round(time.time(), 3), "expires_at": int(expires_at)}

    def get_callback(self, callback_id: str) -> dict[str, Any] | None:
        item = self.items.get((f"CB#{callback_id}", "META"))
        return dict(item) if item else None

    def close_callback(self, callback_id: str, outcome: str) -> bool:
        with self._lock:
            item = self.items.get((f"CB#{callback_id}", "META"))
            if item is None or item["status"] != "OPEN":
                return False
            item.update(status="CLOSED", outcome=outcome, closed_at=round(time.time(), 3))
            return True

    def put_review(self, review: dict[str, Any]) -> bool:
        key = (f"REVIEW#{review['review_id']}", "META")
        with self._lock:
            if key in self.items:
                return False
            self.items[key] = {"pk": key[0], "sk": "META", "status": "OPEN", "created_at": round(time.time(), 3),
                               **review}
            return True

    def count_open_reviews(self) -> int:
        return sum(1 for (p, _), i in self.items.items() if p.startswith("REVIEW#") and i["status"] == "OPEN")

    def open_reviews_for(self, workflow_id: str) -> list[dict[str, Any]]:
        return [r for r in self.open_reviews() if r.get("workflow_id") == workflow_id]

    def get_node(self, workflow_id: str, node_id: str) -> dict[str, Any] | None:
        item = self.items.get((f"WF#{workflow_id}", f"NODE#{node_id}"))
        if item:
            return dict(item)
        meta = self.items.get((f"WF#{workflow_id}", "META"))
        return with_implicit_nodes(meta, {}).get(node_id) if meta else None

    def get_review(self, review_id: str) -> dict[str, Any] | None:
        item = self.items.get((f"REVIEW#{review_id}", "META"))
        return dict(item) if item else None

    def close_review(self, review_id: str, outcome: str, by: str, reason: str | None) -> bool:
        with self._lock:
            item = self.items.get((f"REVIEW#{review_id}", "META"))
            if item is None or item["status"] != "OPEN":
                return False
            item.update(status="CLOSED", outcome=outcome, closed_by=by, reason=reason or "",
                        closed_at=round(time.time(), 3))
            return True

    def open_reviews(self, limit: int = 500) -> list[dict[str, Any]]:
        return [dict(i) for (p, _), i in self.items.items()
                if p.startswith("REVIEW#") and i["status"] == "OPEN"][:limit]

    def mark_review(self, review_id: str, flag: str) -> None:
        with self._lock:
            self.items[(f"REVIEW#{review_id}", "META")][flag] = round(time.time(), 3)


class FakeClock(Clock):
    """A clock that stands where the test puts it: ``at`` is an ISO time (what an audit record's ``ts`` says)."""

    def __init__(self, at: str = "2001-01-01T00:00:00.000Z") -> None:
        self.at = at

    def time(self) -> float:
        return datetime.fromisoformat(self.at.replace("Z", "+00:00")).timestamp()

    def monotonic(self) -> float:
        return self.time()


class FakeAuditStore:
    """Hash-chained records per chain, sealed with the real ``seal`` (so ``audit.chain.check_chain`` applies)."""

    def __init__(self) -> None:
        self.chains: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> dict[str, Any]:
        with self._lock:
            records = self.chains.setdefault(entry.chain, [])
            prev, prev_ts = (records[-1]["hash"], records[-1]["ts"]) if records else (GENESIS, None)
            record = seal(entry, len(records) + 1, prev, prev_ts=prev_ts)
            records.append(record)
            return record

    def chain(self, chain: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.chains.get(chain, [])]

    def scan_all(self) -> list[dict[str, Any]]:
        return [dict(r) for records in self.chains.values() for r in records]

    def delete(self, chain: str, seq: int) -> None:
        self.chains[chain] = [r for r in self.chains.get(chain, []) if r["seq"] != seq]


class FakeTenantsStore:
    def __init__(self, tenants: list[dict[str, Any]]) -> None:
        self.tenants = {t["tenant_id"]: dict(t) for t in tenants}

    @classmethod
    def from_file(cls, path: Path = REPO / "config" / "tenants.yaml") -> FakeTenantsStore:
        return cls(yaml.safe_load(path.read_text())["tenants"])

    def get(self, tenant_id: str) -> dict[str, Any] | None:
        return self.tenants.get(tenant_id)

    def put(self, tenant: dict[str, Any]) -> None:
        self.tenants[tenant["tenant_id"]] = dict(tenant)


class FakeStrategiesStore:
    """Published versions, active pointers, the library revision and the flags item."""

    def __init__(self) -> None:
        self.versions_: dict[tuple[str, int], dict[str, Any]] = {}
        self.active_: dict[str, dict[str, Any]] = {}
        self.library: dict[str, Any] = {"revision": 0, "active": {}}
        self.flags_: dict[str, Any] | None = None
        self.artifacts: dict[str, bytes] = {}  # sha256 -> payload

    def publish(self, strategy_id: str, version: int, text: str, author: str) -> dict[str, Any]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        existing = self.versions_.get((strategy_id, version))
        if existing is not None:
            if existing["sha256"] == digest:
                return existing
            raise AgentError(f"{strategy_id} v{version} is already published with different content",
                             code="strategy.version_exists")
        item = {"strategy_id": strategy_id, "version": version, "yaml": text, "sha256": digest, "author": author,
                "published_at": round(time.time(), 3), "approval": "PENDING"}
        self.versions_[(strategy_id, version)] = item
        return item

    def version(self, strategy_id: str, version: int) -> dict[str, Any] | None:
        return self.versions_.get((strategy_id, version))

    def versions(self, strategy_id: str) -> list[dict[str, Any]]:
        return [v for (sid, _), v in sorted(self.versions_.items()) if sid == strategy_id]

    def active(self, strategy_id: str) -> dict[str, Any] | None:
        return self.active_.get(strategy_id)

    def revision(self) -> dict[str, Any]:
        return self.library

    def revision_head(self) -> dict[str, Any]:
        return {k: v for k, v in self.library.items() if k != "active"}

    def artifact(self, pointer: dict[str, Any]) -> bytes:
        if pointer.get("sha256") not in self.artifacts:
            raise AgentError("the revision names no artifact", code="artifact.missing")
        return self.artifacts[pointer["sha256"]]

    def version_items(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        return {k: self.versions_[k] for k in wanted if k in self.versions_}

    def publish_new(self, drafts: list[dict[str, Any]], audit: Any, entries: list[Any]) -> list[bool]:
        """No transactions here: every draft is left to the caller's one-by-one path (publish, then
        append), as the real store leaves those whose chain has records already."""
        return [False] * len(drafts)

    def approve(self, strategy_id: str, version: int, approver: str, reason: str,
                require_other_approver: bool = False, build: Any = None, end_canary: bool = False) -> dict[str, Any]:
        item = self.version(strategy_id, version)
        if item is None:
            raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
        item.update(approval="APPROVED", approved_by=approver, approval_reason=reason)
        previous = self.active_.get(strategy_id)
        history = [*(previous or {}).get("history", []), version]
        self.active_[strategy_id] = {"strategy_id": strategy_id, "version": version, "history": history}
        number, active = int(self.library["revision"]) + 1, {**self.library["active"], strategy_id: version}
        current, self.library = self.library, {"revision": number, "active": active}
        if build is not None:  # the real store stores the artifact, then points the revision at it
            built = build(current, active, number)
            self.artifacts[built.sha256] = built.payload
            self.library["artifact"] = {"sha256": built.sha256, "chunks": 1, "revision": number}
        return {"strategy_id": strategy_id, "version": version,
                "previous": previous["version"] if previous else None, "revision": self.library["revision"]}

    def documents(self, active: dict[str, int]) -> list[tuple[str, str]]:
        docs = []
        for strategy_id, version in sorted(active.items()):
            item = self.version(strategy_id, int(version))
            if item is None:
                raise AgentError(f"active version {strategy_id} v{version} is missing",
                                 code="strategy.missing_version")
            docs.append((f"{strategy_id}@v{version}", item["yaml"]))
        return docs

    def flags(self) -> dict[str, Any] | None:
        return self.flags_

    def put_flags(self, flags: dict[str, Any]) -> None:
        self.flags_ = flags


# --------------------------------------------------------------------------------------- clients
class FakeQueues:
    """The ``Queues`` port: messages kept in order per queue URL."""

    def __init__(self) -> None:
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def send(self, queue_url: str, body: str, attributes: dict[str, str] | None = None) -> str:
        with self._lock:
            self._seq += 1
            message = {"MessageId": f"m-{self._seq}", "Body": body, "Attributes": dict(attributes or {})}
            self.queues.setdefault(queue_url, []).append(message)
        return str(message["MessageId"])

    def url(self, name: str) -> str | None:
        return next((u for u in self.queues if u.rsplit("/", 1)[-1] == name), None)

    def drain(self, queue_url: str) -> list[str]:
        with self._lock:
            messages = self.queues.pop(queue_url, [])
        return [m["Body"] for m in messages]

    def depth(self, queue_url: str) -> int:
        return len(self.queues.get(queue_url, []))


class FakeStateMachines:
    """The ``StateMachines`` port in memory: one machine per flow (a second definition under the same
    name is refused, as the service refuses it), executions by name, each strategy's alias pointing at
    the version last ensured or pointed, and every task answer recorded.

    Starts follow what Step Functions documents per type: a Standard machine refuses a second start of a
    name (``already``); an Express machine starts every call, each a new execution with its own ARN
    ``...:express:<machine>:<name>:<id>``
    (https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
    ``start_calls`` records every start asked for."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.machines: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, int] = {}  # strategy id -> strategy version its alias routes to
        self.versions: dict[str, set[int]] = {}  # strategy id -> strategy versions published
        self.task_results: list[dict[str, Any]] = []
        self.start_calls: list[tuple[str, str]] = []  # (machine ARN, execution name) of every start
        self._lock = threading.Lock()

    def machine_name(self, flow: Any) -> str:
        return self.settings.state_machine_prefix + flow.state_machine_name.removeprefix(spec.STATE_MACHINE_PREFIX)

    def arn_of(self, compiled_name: str) -> str:
        return state_machine_arn(self.settings, self.settings.state_machine_prefix
                                 + compiled_name.removeprefix(spec.STATE_MACHINE_PREFIX))

    def ensure(self, flow: Any, point_alias: bool = True) -> dict[str, Any]:
        json.loads(flow.definition_json)  # a definition that is not JSON is refused, as by the service
        arn = state_machine_arn(self.settings, self.machine_name(flow))
        with self._lock:
            existing = self.machines.setdefault(arn, {"definition": flow.definition_json, "type": flow.type,
                                                      "strategy": f"{flow.strategy_id}@v{flow.strategy_version}"})
            if existing["definition"] != flow.definition_json:
                raise AgentError(f"state machine {arn} exists with another definition", code="fake.conflict")
            out = {"state_machine_arn": arn, "state_machine_version_arn": f"{arn}:1"}
            if flow.strategy_id and not flow.continuation:  # an Express head is not a strategy version
                self.versions.setdefault(flow.strategy_id, set()).add(flow.strategy_version)
                self.aliases[flow.strategy_id] = flow.strategy_version
                alias_machine = state_machine_arn(self.settings, self.settings.state_machine_prefix + flow.strategy_id)
                out.update(strategy_state_machine_arn=alias_machine, strategy_alias_arn=f"{alias_machine}:live",
                           strategy_state_machine_version_arn=f"{alias_machine}:{flow.strategy_version}")
        return out

    def point_alias(self, strategy_id: str, version: int) -> dict[str, Any]:
        if strategy_id not in self.versions:
            return {"pointed": False, "why": "the strategy has no state machine yet"}
        if version not in self.versions[strategy_id]:
            return {"pointed": False, "why": f"no state-machine version for v{version} yet"}
        self.aliases[strategy_id] = version
        return {"pointed": True}

    def alias_target(self, strategy_id: str) -> dict[str, Any] | None:
        version = self.aliases.get(strategy_id)
        return None if version is None else {"strategy_version": version}

    def start(self, state_machine_arn: str, name: str, input_json: str) -> Started:
        if state_machine_arn not in self.machines:
            raise AgentError(f"no state machine {state_machine_arn}", code="fake.no_machine")
        express = self.machines[state_machine_arn]["type"] == "EXPRESS"
        with self._lock:
            self.start_calls.append((state_machine_arn, name))
            if express:
                arn = state_machine_arn.replace(":stateMachine:", ":express:") + f":{name}:{len(self.start_calls):08d}"
            else:
                arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
            if arn in self.executions:
                return Started(arn, True)
            self.executions[arn] = {"executionArn": arn, "stateMachineArn": state_machine_arn, "name": name,
                                    "input": input_json, "status": "RUNNING", "startDate": time.time()}
        return Started(arn, False)

    def describe(self, execution_arn: str | None, started_after: float | None = None) -> dict[str, Any] | None:
        found = self.executions.get(execution_arn or "")
        return dict(found) if found else None

    def status(self, execution_arn: str | None, started_after: float | None = None) -> str | None:
        found = self.describe(execution_arn)
        return str(found["status"]) if found else None

    def succeed_task(self, task_token: str, output: str) -> bool:
        self.task_results.append({"taskToken": task_token, "output": output, "status": "SUCCESS"})
        return True

    def fail_task(self, task_token: str, error: str, cause: str) -> bool:
        self.task_results.append({"taskToken": task_token, "error": error, "cause": cause, "status": "FAILURE"})
        return True

    def heartbeat(self, task_token: str) -> bool:
        self.task_results.append({"taskToken": task_token, "status": "HEARTBEAT"})
        return True


class FakeLogs:
    """Enough of CloudWatch Logs for ``MetricsRecorder(sink="logs")``: keeps every EMF line."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> dict[str, Any]:  # noqa: N803
        return {}

    def put_log_events(self, logGroupName: str, logStreamName: str,  # noqa: N803
                       logEvents: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.events.extend(logEvents)
        return {}

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for event in self.events:
            doc = json.loads(event["message"])
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    raw = doc.get(metric["Name"], [])
                    out[metric["Name"]] = out.get(metric["Name"], 0.0) + (sum(raw) if isinstance(raw, list) else raw)
        return out


class FakeSecrets:
    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        self.values = values or {}

    def get_json(self, secret_id: str) -> dict[str, Any]:
        if secret_id not in self.values:
            raise _client_error("ResourceNotFoundException", f"secret {secret_id} not found", "GetSecretValue")
        return self.values[secret_id]

    def signing_keys(self, secret_id: str) -> list[str]:
        from powerx_agent.adapters.secrets import key_set

        return key_set(self.get_json(secret_id))

    def replay_callers(self, secret_id: str) -> dict[str, Any]:
        from powerx_agent.adapters.secrets import callers_from

        return callers_from(self.get_json(secret_id))

    def read_fresh(self, secret_id: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.get_json(secret_id)))

    def put_json(self, secret_id: str, value: dict[str, Any]) -> None:
        self.values[secret_id] = json.loads(json.dumps(value))

    def refresh(self, secret_id: str, older_than: float = 5.0) -> bool:
        return False  # nothing cached: every read is fresh


# ---------------------------------------------------------------------------------- downstream HTTP
@dataclass
class FakeHttp:
    """Answers the downstream POSTs (plugin runtime, notifications, ops) in memory."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # "notifications" | "ops" | a plugin id

    def post_json(self, url: str, body: dict[str, Any], headers: dict[str, str], connect_timeout: float,
                  read_timeout: float) -> Any:
        from powerx_agent.adapters.downstream import HttpResult

        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
        self.calls.append({"path": path, "body": body, "headers": dict(headers)})
        service = ("notifications" if path.startswith("/notifications") else "ops" if path.startswith("/ops")
                   else path.split("/")[3] if path.startswith("/plugin/runtime/") else "unknown")
        if service in self.down:
            return HttpResult(503, {"error": f"{service} unavailable (fake)"})
        if service == "ops":
            return HttpResult(201, {"work_order": body.get("review_id")})
        if service == "notifications":
            return HttpResult(202, {"notification_id": f"n-{len(self.calls)}"})
        return HttpResult(200, {"plugin": service, "result": "ok"})


@contextmanager
def fake_http(http: FakeHttp | None = None) -> Iterator[FakeHttp]:
    """Route ``Downstream``'s HTTP through a FakeHttp for the duration (the transport seam)."""
    from powerx_agent.adapters import downstream as calls

    http = http or FakeHttp()
    original = calls.post_json
    calls.post_json = http.post_json
    try:
        yield http
    finally:
        calls.post_json = original


# -------------------------------------------------------------------------------------------- deps
def fake_settings(**overrides: Any) -> Settings:
    base = load_settings()
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
    values: dict[str, Any] = {
        "region": REGION, "endpoint_url": None,
        "match_queue_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/agent-match",
        "ingest_dlq_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/agent-ingest-dlq",
        "workflow_role_arn": f"arn:aws:iam::{ACCOUNT}:role/agent-workflows",
        "node_plugin_arn": fn + "agent-node-plugin", "node_notify_arn": fn + "agent-node-notify",
        "node_review_arn": fn + "agent-node-review", "workflow_fn_arn": fn + "agent-workflow",
        "plugin_runtime_url": "http://plugins.fake", "notifications_url": "http://notify.fake",
        "ops_url": "http://ops.fake", "callbacks_url": "http://api.fake/internal/agent/callbacks",
        "metrics_sink": "logs", "flags_store": "dynamodb",
        "strategies_dir": str(REPO / "strategies"), "library_source": "table",
        "library_refresh_seconds": 30.0, "idempotency_lease_seconds": 20.0,
    }
    values.update(overrides)
    return replace(base, **values)


@dataclass
class FakeDeps:
    """The ``Deps`` interface over the in-memory fakes."""

    settings: Settings
    events: FakeEventsStore
    workflows: FakeWorkflowsStore
    tenants: FakeTenantsStore
    strategies: FakeStrategiesStore
    audit: FakeAuditStore
    secrets: FakeSecrets
    queues: FakeQueues
    state_machines: FakeStateMachines
    logs: FakeLogs
    clock: AdjustableClock = field(default_factory=AdjustableClock)

    @classmethod
    def create(cls, strategies_dir: Path = REPO / "strategies", **settings: Any) -> FakeDeps:
        from powerx_agent.local.deployer import publish_directory

        settings_ = fake_settings(**settings)
        clock = AdjustableClock()
        deps = cls(settings=settings_, events=FakeEventsStore(clock), workflows=FakeWorkflowsStore(),
                   tenants=FakeTenantsStore.from_file(), strategies=FakeStrategiesStore(), audit=FakeAuditStore(),
                   secrets=FakeSecrets(), queues=FakeQueues(), state_machines=FakeStateMachines(settings_),
                   logs=FakeLogs(), clock=clock)
        deps.secrets.values[deps.settings.downstream_secret] = {"plugin_runtime_token": "t-plugin",
                                                               "notifications_token": "t-notify", "ops_token": "t-ops"}
        deps.secrets.values[deps.settings.callback_secret] = {"active": "k1", "k1": "fake-callback-key"}
        deps.secrets.values[deps.settings.replay_secret] = {
            "callers": {"operator": {"tenants": ["*"], "active": "k1", "k1": "fake-replay-key"}}}
        publish_directory(deps.strategies, strategies_dir)  # type: ignore[arg-type]
        return deps

    def client(self, service: str) -> Any:
        clients = {"logs": self.logs}
        if service not in clients:
            raise LookupError(f"FakeDeps has no fake for the {service!r} client")
        return clients[service]

    @cached_property
    def flags(self) -> Flags:
        return Flags(DynamoFlagStore(self.strategies, self.settings.flags_cache_seconds, self.clock.monotonic))

    def flag_store_errors(self) -> int:
        flags = self.__dict__.get("flags")
        return flags.take_store_errors() if flags is not None else 0

    def metrics(self) -> MetricsRecorder:
        return MetricsRecorder("logs", self.logs, self.settings.metrics_log_group, background=False)

    @cached_property
    def process_state(self) -> dict[str, Any]:
        return {}


def bus_event(event_type: str, detail: dict[str, Any], source: str = "powerx.plugins",
              bus_id: str | None = None) -> dict[str, Any]:
    """What EventBridge hands the ingest function for one PutEvents entry."""
    return {"version": "0", "id": bus_id or hashlib.sha1(json.dumps(detail, sort_keys=True).encode()).hexdigest(),
            "detail-type": event_type, "source": source, "account": ACCOUNT, "time": "2026-11-28T10:00:00Z",
            "region": REGION, "resources": [], "detail": detail}
