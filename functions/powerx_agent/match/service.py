"""The matcher step: decide → build → compile → ensure the state machine → start (README.md, "How an event flows").

Safe to run twice for the same event: the workflow item is created conditionally, the state
machine is named by its definition hash, and the execution by the workflow id (derived from tenant
and idempotency key). For a Standard machine Step Functions itself refuses a second start of that
name. An Express machine does not (Express is at-least-once: starting twice with one name runs twice,
https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html), so an
Express execution is started only by the delivery whose conditional create of the workflow item
succeeded; a redelivery finds the workflow and never starts it again (:meth:`Matcher._express_again`).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from powerx_agent import spec, telemetry
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.errors import AgentError, RetryableError, StrategyError, TaskflowError
from powerx_agent.escalation.service import escalate
from powerx_agent.strategy import artifact
from powerx_agent.strategy.canary import CanaryPlan
from powerx_agent.strategy.evaluate import Evaluation, EventFacts, evaluate
from powerx_agent.strategy.library import (
    Library,
    LibraryCache,
    LibraryLoadError,
    build_library,
    library_from_artifact,
    library_from_directory,
)
from powerx_agent.strategy.loader import CompiledStrategy, load_strategy_text
from powerx_agent.taskflow.asl import (
    CompiledFlow,
    FunctionArns,
    compile_express_head,
    compile_flow,
    flow_for_event,
)
from powerx_agent.taskflow.limits import check_execution_input

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

_REVISION = re.compile(r"r([0-9]{1,12})(?:\+c[0-9]{1,12})?")  # a published revision, with running canaries or not
SKIPPED_AT_MATCH = "when condition false (skipped at match time: the flow runs on its Express head)"


def event_facts(context: dict[str, Any]) -> EventFacts:
    """The facts of the accepted event the ingest step handed on."""
    event = context["event"]
    return EventFacts(event_type=event["event_type"], source=event["source"],
                      tenant_id=context["tenant"]["tenant_id"], event_id=event["event_id"],
                      idempotency_key=event["idempotency_key"], detail=event["detail"],
                      bus_event_id=event.get("bus_event_id"))


class Matcher:
    def __init__(self, deps: Deps, metrics: Any) -> None:
        self.deps = deps
        self.metrics = metrics
        self.settings = deps.settings
        self.state = deps.process_state

    # -- library -----------------------------------------------------------------------------
    def library(self) -> Library:
        use_published = (self.settings.library_source == "table"
                         and self.deps.flags.enabled("agent-strategy-library"))
        cache_key = "library:table" if use_published else "library:dir"
        cache = self.state.setdefault(cache_key, LibraryCache(self.settings.library_refresh_seconds,
                                                                self.deps.clock.monotonic))
        fallback = None
        if use_published:
            head: dict[str, Any] = {}

            def current() -> str:
                # one small read: the revision number, its artifact pointer and the running canaries
                # (not the active map); a canary change is a new library without a new artifact
                head.clear()
                head.update(self.deps.strategies.revision_head())
                return f"r{head['revision']}" + (f"+c{int(head['canary_seq'])}" if head.get("canaries") else "")

            def base(number: int) -> Library:
                cached = self.state.get("library:base")
                if cached is not None and cached[0] == number:
                    return cached[1]
                if number == 0:
                    library = build_library([], "r0")
                else:
                    try:
                        found = artifact.read(self.deps.strategies.artifact, head.get("artifact"), number)
                        library = library_from_artifact(found, f"r{number}")
                    except AgentError as exc:  # missing, corrupt, stale: counted, then compiled from the YAML
                        self._library_error(exc, "library artifact not served; compiling the revision's YAML")
                        item = self.deps.strategies.revision()
                        library = build_library(self.deps.strategies.documents(item.get("active", {})),
                                                f"r{item['revision']}")
                self.state["library:base"] = (number, library)
                return library

            def load(revision: str) -> Library:
                library = base(int(head["revision"]))
                canaries = dict(head.get("canaries") or {})
                if not canaries and revision == library.revision:
                    return library
                return library.with_canaries(revision, [self._canary(sid, entry) for sid, entry in sorted(canaries.items())])

            def fallback() -> Library | None:
                """A cold process whose current revision cannot be loaded serves the newest earlier
                revision whose artifact verifies (the warm ones keep serving theirs)."""
                for pointer in head.get("artifacts", []):
                    if pointer.get("revision") == head.get("revision"):
                        continue
                    try:
                        found = artifact.read(self.deps.strategies.artifact, pointer, pointer.get("revision"))
                        return library_from_artifact(found, f"r{pointer['revision']}")
                    except AgentError as exc:
                        self._library_error(exc, "earlier library artifact not served either")
                return None
        else:
            def current() -> str:
                return f"dir:{self.settings.strategies_dir}"

            def load(revision: str) -> Library:
                return library_from_directory(self.settings.strategies_dir, revision)

        def on_error(exc: Exception) -> None:
            self._library_error(exc, "strategy library not loaded; serving the last good one")

        return cache.get(current, load, on_error, fallback)

    def library_at(self, revision: str) -> Library | None:
        """The library a decision record names (its ``library_revision``), to explain that decision
        again: the current library when it is that revision; otherwise the published revision ``r<N>``
        from its kept artifact (the newest ones are kept), without the canaries that ran then (a
        record's ``arm`` says which arm decided). None when the revision is no longer kept, or is a
        directory library other than the current one."""
        current = self.library()
        if revision == current.revision:
            return current
        found = _REVISION.fullmatch(revision)
        if found is None:
            return None
        number = int(found.group(1))
        if current.revision.partition("+")[0] == f"r{number}":  # the same revision, other canaries
            return Library(f"r{number}", current.members, current.index)
        for pointer in self.deps.strategies.revision_head().get("artifacts") or []:
            if int(pointer.get("revision") or 0) == number:
                try:
                    return library_from_artifact(artifact.read(self.deps.strategies.artifact, pointer, number),
                                                 f"r{number}")
                except AgentError as exc:
                    self._library_error(exc, "earlier library artifact not served")
                    return None
        return None

    def _canary(self, strategy_id: str, entry: dict[str, Any]) -> tuple[CanaryPlan, CompiledStrategy]:
        """A running canary's plan and its version, compiled (one read: the version item)."""
        plan = CanaryPlan.from_item(strategy_id, entry)
        item = self.deps.strategies.version(strategy_id, plan.version)
        if item is None:
            raise AgentError(f"canary version {strategy_id} v{plan.version} is missing", code="strategy.missing_version")
        compiled, findings = load_strategy_text(item["yaml"], f"{strategy_id}@v{plan.version}")
        if compiled is None or any(f.severity == "error" for f in findings):
            raise LibraryLoadError(f"{strategy_id}@v{plan.version}", [f for f in findings if f.severity == "error"])
        return plan, compiled

    def _library_error(self, exc: Exception, message: str) -> None:
        self.metrics.add(spec.METRICS["library_errors"], 1)
        telemetry.logger.error(message, extra={"error": str(exc)[:2000]})

    # -- the step ----------------------------------------------------------------------------
    def handle(self, context: dict[str, Any]) -> dict[str, Any]:
        event = context.get("event") or {}
        with telemetry.work("match", tenant_id=(context.get("tenant") or {}).get("tenant_id"),
                            event_id=event.get("event_id"), workflow_id=context.get("workflow_id"),
                            traceparent=(context.get("trace") or {}).get("traceparent")):
            result = self._handle(context)
            outcome = result["outcome"]
            extra = {k: result[k] for k in ("outcome", "reason", "review_id", "execution_arn") if result.get(k)}
            if outcome == "escalated":
                telemetry.logger.warning(f"event escalated: {result.get('reason')}", extra=extra)
            else:
                telemetry.logger.info(f"match {outcome}", extra=extra)
            return result

    def _handle(self, context: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        event = context["event"]
        tenant = context["tenant"]
        tenant_id = tenant["tenant_id"]
        workflow_id = context["workflow_id"]
        key = event["idempotency_key"]
        existing = self.deps.events.get(tenant_id, key)
        if existing and existing.get("status") in ("COMPLETED", "DEFERRED"):
            return {"outcome": "already_done", "workflow_id": workflow_id}
        library = self.library()
        found = evaluate(library, event_facts(context), tenant)
        decision, selected = found.decision, found.selected
        if selected is not None:
            telemetry.bind(strategy_id=selected.strategy.id)
        chain = workflow_chain(workflow_id)
        record = decision.to_dict()  # the bounded record: in the audit trail and the workflow's META
        self.deps.audit.append(AuditEntry(
            "decision", chain, tenant_id=tenant_id, event_id=event["event_id"], workflow_id=workflow_id,
            strategy_id=selected.strategy.id if selected else None, status="MATCHED" if selected else "UNMATCHED",
            data={"decision": record, "reason": decision.reason()}))
        # 1 for a matched event, 0 for a miss: the average is the hit rate (alarm: 100 * (1 - avg) > 20)
        self.metrics.add(spec.METRICS["hit_rate"], 1.0 if selected else 0.0, "None", tenant=tenant_id)
        if selected is None:
            return self._unmatched(context, decision.reason())
        return self._launch(context, found, record, started)

    def _unmatched(self, context: dict[str, Any], why: str) -> dict[str, Any]:
        event, tenant = context["event"], context["tenant"]
        result = escalate(self.deps, self.metrics, workflow_id=context["workflow_id"], tenant_id=tenant["tenant_id"],
                          event_id=event["event_id"], reason="no_strategy_matched", queue="ops",
                          notify_to=list(tenant.get("notify") or [tenant.get("owner")]),
                          details={"event_type": event["event_type"], "why": why},
                          traceparent=context["trace"]["traceparent"])
        self.deps.events.finish(tenant["tenant_id"], event["idempotency_key"], status="COMPLETED", outcome="escalated")
        return {"outcome": "escalated", "workflow_id": context["workflow_id"], **result}

    def _launch(self, context: dict[str, Any], found: Evaluation, record: dict[str, Any],
                started: float) -> dict[str, Any]:
        event, tenant, compiled = context["event"], context["tenant"], found.selected
        assert compiled is not None
        tenant_id, workflow_id, strategy = tenant["tenant_id"], context["workflow_id"], compiled.strategy
        allowed = tenant.get("allowed_plugins") or []
        refused = sorted({n.plugin for n in strategy.flow.nodes
                          if n.plugin and "*" not in allowed and n.plugin not in allowed})
        if refused:
            return self._refuse(context, strategy.id, "plugin_not_allowed", {"plugins": refused})
        full = self._compiled_flow(compiled)
        try:
            builtins, variables = found.builtins, found.variables
            when = {full.when_keys[node_id]: found.when[node_id] for node_id in compiled.node_whens}
            # Express unless someone is awaited: the head when every node that waits is skipped for this event
            flow = flow_for_event(full, self._express_head(compiled, full), found.when)
            execution_input = {
                "workflow": {"workflow_id": workflow_id, "tenant_id": tenant_id, "event_id": event["event_id"],
                             "idempotency_key": event["idempotency_key"], "event_type": event["event_type"],
                             "strategy_id": strategy.id, "strategy_version": strategy.version,
                             "traceparent": context["trace"]["traceparent"]},
                "variables": {**builtins, **variables},
                "when": when,
            }
            continuation: dict[str, Any] = {}
            if flow is not full:  # where the head hands off to (its "Continue in Standard" state reads it)
                execution_input["continuation"] = self.deps.state_machines.arn_of(full.state_machine_name)
                continuation = {"continuation_state_machine_arn": execution_input["continuation"]}
            input_json = json.dumps(execution_input, separators=(",", ":"), default=str)
            check_execution_input(input_json)
        except (StrategyError, TaskflowError) as exc:
            # this event and this strategy can never make an execution (template.too_large,
            # limit.payload_size): a person decides; retrying would fail the same way
            return self._refuse(context, strategy.id, "input_too_large", {"code": exc.code, "message": exc.message})
        # a canary's flows leave the strategy's alias on the active version until a promotion
        point_alias = (found.decision.arm or {}).get("arm") != "canary"
        state_machine_arn = self._ensure_state_machine(full, point_alias)  # the strategy version's alias follows it
        if flow is not full:
            state_machine_arn = self._ensure_state_machine(flow, point_alias)
        skipped = dict.fromkeys(flow.skipped_nodes, SKIPPED_AT_MATCH)
        created = self.deps.workflows.create(
            {"workflow_id": workflow_id, "tenant_id": tenant_id, "event_id": event["event_id"],
             "idempotency_key": event["idempotency_key"], "event_type": event["event_type"],
             "strategy_id": strategy.id, "strategy_version": strategy.version,
             "state_machine_arn": state_machine_arn, "state_machine_type": flow.type, "type_reason": flow.type_reason,
             "decision": record, "traceparent": context["trace"]["traceparent"],
             **self._state_machine_meta(full), **self._state_machine_meta(flow), **continuation,
             "received_at": context.get("received_at")},
            [n.id for n in strategy.flow.nodes], skipped=skipped)
        if flow.type == "EXPRESS" and not created:
            return self._express_again(context, strategy.id)
        if created:
            for node_id, why in skipped.items():
                self.deps.audit.append(AuditEntry(
                    "node.skipped", workflow_chain(workflow_id), tenant_id=tenant_id, event_id=event["event_id"],
                    workflow_id=workflow_id, strategy_id=strategy.id, node_id=node_id, status="SKIPPED",
                    data={"reason": why}))
        execution_arn = self._start(state_machine_arn, workflow_id, input_json)
        if not self.deps.workflows.transition_workflow(workflow_id, "RUNNING", execution_arn=execution_arn):
            # already moved on (a redelivery, or the nodes finished first): record the ARN alone, unless an
            # Express head already handed the workflow off to its Standard continuation
            self.deps.workflows.update_meta(workflow_id, unless="handed_off_at", execution_arn=execution_arn)
        matcher_ms = (time.monotonic() - started) * 1000
        # generation latency: from the event's acceptance by ingest (``received_at``, when it wrote
        # event.accepted) to StartExecution returned, the queue wait included; the matcher's own share beside it
        accepted_at = context.get("received_at")
        latency_ms = (time.time() - float(accepted_at)) * 1000 if accepted_at else matcher_ms
        latency_ms = max(latency_ms, matcher_ms)  # never below what the matcher itself measured (clock skew)
        if created:
            self.deps.audit.append(AuditEntry(
                "workflow.started", workflow_chain(workflow_id), tenant_id=tenant_id, event_id=event["event_id"],
                workflow_id=workflow_id, strategy_id=strategy.id, status="RUNNING", duration=round(latency_ms, 3),
                data={"generation_ms": round(latency_ms, 3), "matcher_ms": round(matcher_ms, 3),
                      "strategy_version": strategy.version, "state_machine": flow.state_machine_name,
                      "type": flow.type, "type_reason": flow.type_reason, "execution_arn": execution_arn,
                      "variables": variables, "when": when,
                      **({"continuation": flow.continuation} if flow.continuation else {})}))
            self.metrics.add(spec.METRICS["generated"], 1, tenant=tenant_id, strategy=strategy.id)
            self.metrics.add(spec.METRICS["latency"], latency_ms, "Milliseconds", tenant=tenant_id, strategy=strategy.id)
        self.deps.events.finish(tenant_id, event["idempotency_key"], status="COMPLETED", outcome="workflow_started",
                                strategy_id=strategy.id)
        return {"outcome": "started", "workflow_id": workflow_id, "execution_arn": execution_arn}

    def _refuse(self, context: dict[str, Any], strategy_id: str, reason: str,
                details: dict[str, Any]) -> dict[str, Any]:
        """The selected strategy cannot run for this event: escalate with ``reason``, and finish the event."""
        event, tenant, workflow_id = context["event"], context["tenant"], context["workflow_id"]
        result = escalate(self.deps, self.metrics, workflow_id=workflow_id, tenant_id=tenant["tenant_id"],
                          event_id=event["event_id"], reason=reason, queue="ops",
                          notify_to=list(tenant.get("notify") or [tenant.get("owner")]),
                          details={"strategy_id": strategy_id, **details},
                          strategy_id=strategy_id, traceparent=context["trace"]["traceparent"])
        self.deps.events.finish(tenant["tenant_id"], event["idempotency_key"], status="COMPLETED",
                                outcome="escalated", strategy_id=strategy_id)
        return {"outcome": "escalated", "workflow_id": workflow_id, **result}

    def _express_again(self, context: dict[str, Any], strategy_id: str) -> dict[str, Any]:
        """A delivery of a match message whose Express workflow another delivery created: never start it
        again. Once the first delivery has recorded its execution (or the workflow has moved on), this
        one completes as a duplicate; until then it is retried later (the first delivery may still be
        starting it). Should the first delivery have died between creating the workflow and starting
        the execution, the message ends in the match DLQ (alarmed) and the workflow stays PENDING:
        docs/runbook.md, "An Express workflow that never started"."""
        event, tenant_id, workflow_id = context["event"], context["tenant"]["tenant_id"], context["workflow_id"]
        meta = self.deps.workflows.get(workflow_id) or {}
        if not meta.get("execution_arn") and meta.get("status") == "PENDING":
            raise RetryableError(f"workflow {workflow_id} exists but the start of its Express execution is not "
                                 "recorded yet; not starting it a second time", code="express.start_unconfirmed")
        self.deps.events.finish(tenant_id, event["idempotency_key"], status="COMPLETED", outcome="workflow_started",
                                strategy_id=strategy_id)
        return {"outcome": "already_started", "workflow_id": workflow_id, "execution_arn": meta.get("execution_arn")}

    def _compiled_flow(self, compiled: CompiledStrategy) -> CompiledFlow:
        arns = FunctionArns(**self.settings.function_arns)
        cache = self.state.setdefault("flows", {})
        cache_key = (compiled.strategy.key, compiled.strategy.model_dump_json(), arns)
        flow = cache.get(cache_key)
        if flow is None:
            template = compiled.flow_template  # compiled when the library artifact was built
            flow = template.instantiate(arns) if template is not None else compile_flow(compiled.strategy, arns)
            cache[cache_key] = flow
        return flow

    def _express_head(self, compiled: CompiledStrategy, full: CompiledFlow) -> CompiledFlow | None:
        """The flow's Express head (:func:`compile_express_head`), compiled once per process."""
        cache = self.state.setdefault("heads", {})
        if full.sha256 not in cache:
            cache[full.sha256] = compile_express_head(compiled.strategy, FunctionArns(**self.settings.function_arns),
                                                      full)
        head: CompiledFlow | None = cache[full.sha256]
        return head

    def _ensure_state_machine(self, flow: CompiledFlow, point_alias: bool = True) -> str:
        """The ARN to start executions on. Creates the flow's hash-named state machine (published as
        version 1, never updated) and publishes the flow as a version of the strategy's alias
        machine, pointing its ``live`` alias there (see :mod:`powerx_agent.adapters.state_machines`),
        unless the flow is a canary's: ``live`` stays on the active version until a promotion."""
        known = self.state.setdefault("state_machines", {})
        name = self.deps.state_machines.machine_name(flow)
        if name not in known:
            known[name] = self.deps.state_machines.ensure(flow, point_alias=point_alias)
        return known[name]["state_machine_arn"]

    def _state_machine_meta(self, flow: CompiledFlow) -> dict[str, Any]:
        """Version and alias ARNs for the workflow META (recorded once _ensure_state_machine ran)."""
        found = self.state.get("state_machines", {}).get(self.deps.state_machines.machine_name(flow), {})
        return {k: v for k, v in found.items() if k != "state_machine_arn"}

    def _start(self, state_machine_arn: str, workflow_id: str, input_json: str) -> str:
        # a redelivered message finds the execution the first delivery started (already=True)
        return self.deps.state_machines.start(state_machine_arn, workflow_id, input_json).execution_arn
