"""Node execution: plugin, notify and manual review nodes, with status write-back and audit.

Status moves PENDING → RUNNING → SUCCEEDED | FAILED (forward only, conditional updates). Every attempt
ends in one audit record (``node.succeeded``, ``node.waiting``, ``node.attempt_failed``, ``node.failed``,
each with its attempt number); the start of an attempt is in the status item (RUNNING, ``attempts``,
``last_attempt_at``) and the execution history, not in a record of its own (docs/write-path.md). Retryable failures are raised as typed errors for the state machine's
``Retry``; on the last attempt the node is marked FAILED before the error propagates.

Plugin nodes with ``callback:`` (the synchronous-answer contract, docs/taskflow.md): the plugin gets a
``callback_url`` signed for that call only. It answers either **202** (accepted: it will POST the
outcome to the callback URL later) or **any other 2xx with the result**, which completes the node at
once, exactly as a plugin node without ``callback:`` (the runner records the node, then resumes the
waiting state itself). 4xx/5xx are failures as for any plugin node.

Idempotent re-runs: a node found already SUCCEEDED in ``agent_workflows`` (kept by ``workflow
retry``, filled by hand with ``workflow fill``, or a Lambda retry after a success that was not
returned) is not run again: the runner returns its stored output without calling downstream (and
resumes the execution itself when the state waits for a task token).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from powerx_agent import spec, telemetry
from powerx_agent.adapters.aws import is_aws_error
from powerx_agent.adapters.downstream import Downstream
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.errors import (
    AgentError,
    AttemptsExhausted,
    AwsUnavailable,
    HandOff,
    NodeInputError,
    TenantScopeError,
)
from powerx_agent.escalation.service import escalate
from powerx_agent.strategy.templates import Template, compile_template
from powerx_agent.trace import child

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

MAX_OUTPUT_BYTES = 8 * 1024
HEAD_ATTEMPT_WAIT_SECONDS = 60.0  # a node's default timeout
CALLBACK_URL_GRACE_SECONDS = 3600
_templates: dict[str, Template] = {}


def render(value: Any, variables: dict[str, Any], where: str) -> Any:
    cache_key = json.dumps(value, sort_keys=True, default=str)
    template = _templates.get(cache_key)
    if template is None:
        try:
            template = compile_template(value, where)
        except AgentError as exc:
            raise NodeInputError(str(exc)) from exc
        _templates[cache_key] = template
    missing = set(template.names) - set(variables)
    if missing:
        raise NodeInputError(f"{where} uses undefined variable(s): {', '.join(sorted(missing))}")
    try:
        return template.render(variables)
    except AgentError as exc:  # template.too_large: refused before anything is built
        raise NodeInputError(f"{where}: {exc}") from exc


def callback_id_for(workflow_id: str, node_id: str, generation: int = 1) -> str:
    text = f"{workflow_id}|{node_id}" + (f"|g{generation}" if generation > 1 else "")
    return "cb-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def generation_of(wf: dict[str, Any]) -> int:
    """The attempt generation of a workflow (1; ``workflow retry`` starts 2, 3, ...)."""
    return int(wf.get("generation") or 1)


def idempotency_key(workflow_id: str, node_id: str, generation: int = 1) -> str:
    """Stable across the state machine's retries of a node; a new retry generation is a new key
    (the operator asked for the work to be done again)."""
    return f"{workflow_id}:{node_id}" + (f":g{generation}" if generation > 1 else "")


def small(output: Any) -> Any:
    text = json.dumps(output, default=str)
    if len(text.encode()) <= MAX_OUTPUT_BYTES:
        return output
    return {"truncated": True, "bytes": len(text.encode()), "preview": text[:512]}


class NodeRunner:
    def __init__(self, deps: Deps, metrics: Any) -> None:
        self.deps = deps
        self.metrics = metrics
        self.downstream = Downstream(deps)

    def run(self, payload: dict[str, Any], expected_kind: str | None = None) -> dict[str, Any]:
        wf, node = payload.get("workflow") or {}, payload.get("node") or {}
        with telemetry.work("node", tenant_id=wf.get("tenant_id"), event_id=wf.get("event_id"),
                            workflow_id=wf.get("workflow_id"), traceparent=wf.get("traceparent"),
                            strategy_id=wf.get("strategy_id"), node_id=node.get("id"), node_kind=node.get("kind")):
            result = self._run(payload, expected_kind)
            telemetry.logger.info(f"node {str(result.get('status') or 'waiting').lower()}",
                                  extra={k: result[k] for k in ("status", "reused", "review_id", "callback_id")
                                         if result.get(k)})
            return result

    def _run(self, payload: dict[str, Any], expected_kind: str | None = None) -> dict[str, Any]:
        node, wf = payload["node"], payload["workflow"]
        if expected_kind is not None and node.get("kind") != expected_kind:
            # each node function is granted only what its kind needs: refuse a misrouted payload clearly
            raise NodeInputError(f"node {node.get('id')!r} is a {node.get('kind')!r} node; "
                                 f"this function runs {expected_kind!r} nodes")
        workflow_id, node_id = wf["workflow_id"], node["id"]
        if node_id in (wf.get("failed_before") or ()):
            # failed for good in the Express head before a sibling handed the workflow off: not called again
            raise AttemptsExhausted(f"node {node_id}: failed for good in the Express head before the hand-off",
                                    details={"node_id": node_id})
        tries = int(payload.get("retry_count") or 0) + 1  # this execution's attempt (its Retry counts these)
        # attempts an Express head made before it handed the workflow off here (numbering goes on)
        before = int((wf.get("attempts_before") or {}).get(node_id) or 0)
        attempt = tries + before
        max_attempts = int((node.get("retry") or {}).get("attempts", 1))
        if before >= max_attempts:
            # the head's last attempt was still running when a parallel sibling handed the workflow off:
            # its outcome is the node's, it is not called once more
            return self._head_outcome(payload, wf, node)
        started = time.monotonic()
        generation = generation_of(wf)
        moved = self.deps.workflows.transition_node(workflow_id, node_id, "RUNNING", attempts=attempt,
                                                    kind=node["kind"], last_attempt_at=round(time.time(), 3),
                                                    generation=generation)
        if not moved:
            item = self.deps.workflows.get_node(workflow_id, node_id) or {}
            if item.get("status") == "SUCCEEDED":
                return self._reuse(payload, wf, node_id, item, generation)
        try:
            return self._run_and_record(payload, node, wf, attempt, started)
        except AgentError as exc:
            duration = round((time.monotonic() - started) * 1000, 3)
            final = not exc.retryable or attempt >= max_attempts
            error = {"type": type(exc).__name__, "code": exc.code, "message": exc.message, "attempt": attempt}
            if final:
                self.deps.workflows.transition_node(workflow_id, node_id, "FAILED", error=error, duration=duration)
                self.metrics.add(spec.METRICS["node_failure"], 1, tenant=wf["tenant_id"], strategy=wf["strategy_id"])
            else:
                self.deps.workflows.transition_node(workflow_id, node_id, "RUNNING", last_error=error)
            self._audit("node.failed" if final else "node.attempt_failed", wf, node_id,
                        "FAILED" if final else "RUNNING", duration=duration, data=error)
            if not final and payload.get("hand_off"):
                # an Express head: the retries run in the Standard continuation
                raise HandOff(f"node {node_id}: attempt {attempt} of {max_attempts} failed ({exc.code}); "
                              "continuing in the Standard machine", details=error) from exc
            if final and exc.retryable and attempt > tries:
                # the continuation of a head: its Retry counts only its own attempts, so stop it here
                raise AttemptsExhausted(f"node {node_id}: attempt {attempt} of {max_attempts} failed, the last "
                                        f"({exc.code}: {exc.message})", details=error) from exc
            raise

    def _head_outcome(self, payload: dict[str, Any], wf: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        """Waits (at most the node's timeout) for the Express head's last attempt to settle: SUCCEEDED is
        reused, anything else ends the node (not retried, the workflow escalates)."""
        workflow_id, node_id = wf["workflow_id"], node["id"]
        deadline = time.monotonic() + float(node.get("timeout") or HEAD_ATTEMPT_WAIT_SECONDS)
        pause = 0.05
        item = self.deps.workflows.get_node(workflow_id, node_id) or {}
        while item.get("status") == "RUNNING" and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            item = self.deps.workflows.get_node(workflow_id, node_id) or {}
        if item.get("status") == "SUCCEEDED":
            return self._reuse(payload, wf, node_id, item, generation_of(wf))
        error = {"code": AttemptsExhausted.code, "node_id": node_id,
                 "message": "the last attempt, made in the Express head, " +
                            ("failed" if item.get("status") == "FAILED" else "did not settle in the node's timeout")}
        if self.deps.workflows.transition_node(workflow_id, node_id, "FAILED", error=error):
            self.metrics.add(spec.METRICS["node_failure"], 1, tenant=wf["tenant_id"], strategy=wf["strategy_id"])
            self._audit("node.failed", wf, node_id, "FAILED", data=error)
        raise AttemptsExhausted(f"node {node_id}: {error['message']}", details=error)

    def _run_and_record(self, payload: dict[str, Any], node: dict[str, Any], wf: dict[str, Any], attempt: int,
                        started: float) -> dict[str, Any]:
        node_id = node["id"]
        try:
            result = self._dispatch(payload, node, wf, attempt)
            duration = round((time.monotonic() - started) * 1000, 3)
            if result.get("waiting"):
                self._audit("node.waiting", wf, node_id, "RUNNING", duration=duration, data=result)
                return result
            self.succeed(wf, node_id, result.get("output"), duration, attempt)
            resume = result.get("resume")
            if resume:
                self._resume(node_id, resume["task_token"], json.dumps(small(result.get("output") or {})))
                self.deps.workflows.close_callback(resume["callback_id"], "succeeded")
            return {"node_id": node_id, "status": "SUCCEEDED"}
        except AgentError:
            raise
        except Exception as exc:
            # an AWS call failed (a throttled or lost write-back after the downstream call succeeded):
            # typed as retryable so the state machine retries; the repeated downstream call carries
            # the same Idempotency-Key, so the service can de-duplicate it
            if not is_aws_error(exc):
                raise
            raise AwsUnavailable(f"node {node_id}: AWS call failed: {type(exc).__name__}: {exc}") from exc

    def succeed(self, wf: dict[str, Any], node_id: str, output: Any, duration: float | None, attempt: int | None,
                via: str = "lambda") -> bool:
        changed = self.deps.workflows.transition_node(wf["workflow_id"], node_id, "SUCCEEDED", output=small(output),
                                                      duration=duration)
        if changed:
            self.metrics.add(spec.METRICS["node_success"], 1, tenant=wf["tenant_id"], strategy=wf["strategy_id"])
            self._audit("node.succeeded", wf, node_id, "SUCCEEDED", duration=duration,
                        data={"attempt": attempt, "via": via})
        return changed

    def fail(self, wf: dict[str, Any], node_id: str, error: dict[str, Any], via: str) -> bool:
        """A node failed from outside a task (a rejected review, a callback reporting failure): counted and
        audited like a final failed attempt, once."""
        changed = self.deps.workflows.transition_node(wf["workflow_id"], node_id, "FAILED", error=error)
        if changed:
            self.metrics.add(spec.METRICS["node_failure"], 1, tenant=wf["tenant_id"], strategy=wf["strategy_id"])
            self._audit("node.failed", wf, node_id, "FAILED", data={**error, "via": via})
        return changed

    def _reuse(self, payload: dict[str, Any], wf: dict[str, Any], node_id: str, item: dict[str, Any],
               generation: int) -> dict[str, Any]:
        output = item.get("output")
        if payload.get("task_token"):
            self._resume(node_id, payload["task_token"], json.dumps(small(output or {}), default=str))
        self._audit("node.reused", wf, node_id, "SUCCEEDED",
                    data={"generation": generation, "filled_by": item.get("filled_by"),
                          "succeeded_in_generation": item.get("generation", 1)})
        return {"node_id": node_id, "status": "SUCCEEDED", "reused": True}

    def _dispatch(self, payload: dict[str, Any], node: dict[str, Any], wf: dict[str, Any],
                  attempt: int) -> dict[str, Any]:
        variables = payload.get("variables") or {}
        rendered = render(node.get("input") or {}, variables, f"node {node['id']} input")
        headers = {"Idempotency-Key": idempotency_key(wf["workflow_id"], node["id"], generation_of(wf)),
                   "X-Tenant-Id": wf["tenant_id"],
                   "traceparent": child(wf.get("traceparent", ""))}
        kind = node["kind"]
        if kind == "plugin":
            return self._plugin(payload, node, wf, rendered, headers, attempt)
        if kind == "notify":
            to = render(node["notify"]["to"], variables, f"node {node['id']} notify.to")
            self.downstream.notify({"type": "agent_task", "template": node["notify"]["template"],
                                    "to": to if isinstance(to, list) else [to], "tenant_id": wf["tenant_id"],
                                    "workflow_id": wf["workflow_id"], "node_id": node["id"], "input": rendered},
                                   headers)
            return {"output": {"notified": to}}
        if kind == "manual_review":
            review = node["manual_review"]
            tenant = self.deps.tenants.get(wf["tenant_id"]) or {}
            result = escalate(self.deps, self.metrics, workflow_id=wf["workflow_id"], tenant_id=wf["tenant_id"],
                              event_id=wf.get("event_id"), reason=review["reason"], queue=review["queue"],
                              notify_to=list(tenant.get("notify") or []), details={"input": rendered},
                              strategy_id=wf["strategy_id"], node_id=node["id"],
                              traceparent=wf.get("traceparent", ""), task_token=payload["task_token"],
                              generation=generation_of(wf))
            return {"waiting": True, "review_id": result["review_id"]}
        raise NodeInputError(f"unknown node kind {kind!r}")

    def _plugin(self, payload: dict[str, Any], node: dict[str, Any], wf: dict[str, Any], rendered: Any,
                headers: dict[str, str], attempt: int) -> dict[str, Any]:
        tenant = self.deps.tenants.get(wf["tenant_id"]) or {}
        allowed = tenant.get("allowed_plugins") or []
        if "*" not in allowed and node["plugin"] not in allowed:
            raise TenantScopeError(f"tenant {wf['tenant_id']} may not use plugin {node['plugin']}")
        body = {"workflow_id": wf["workflow_id"], "node_id": node["id"], "tenant_id": wf["tenant_id"],
                "strategy_id": wf["strategy_id"], "input": rendered,
                "context": {"event_id": wf.get("event_id"), "event_type": wf.get("event_type"),
                            "strategy_version": wf.get("strategy_version"), "attempt": attempt,
                            "traceparent": headers["traceparent"]}}
        task_token = payload.get("task_token")
        if task_token:
            callback_id = callback_id_for(wf["workflow_id"], node["id"], generation_of(wf))
            timeout = float((node.get("callback") or {}).get("timeout", 600))
            self.deps.workflows.put_callback(callback_id, task_token=task_token, workflow_id=wf["workflow_id"],
                                             node_id=node["id"], kind="plugin", expires_at=time.time() + timeout + 86400)
            body["callback_id"] = callback_id
            # signed for this callback only, valid for the node's callback timeout and an hour's grace
            url = self.downstream.callback_url(callback_id, timeout + CALLBACK_URL_GRACE_SECONDS)
            if url:
                body["callback_url"] = url
        result = self.downstream.execute_plugin(node["plugin"], body, headers)
        if task_token and result.status == 202:
            return {"waiting": True, "callback_id": body["callback_id"]}
        if task_token:
            # the synchronous-answer contract: any other 2xx is the node's answer; the node is recorded
            # first, then the waiting state is resumed (_run_and_record)
            return {"output": result.body, "resume": {"task_token": task_token, "callback_id": body["callback_id"]}}
        return {"output": result.body}

    def _resume(self, node_id: str, task_token: str, output: str) -> None:
        """Answer the task the execution waits on; a token no longer valid is retried like a failed AWS call."""
        if not self.deps.state_machines.succeed_task(task_token, output):
            raise AwsUnavailable(f"node {node_id}: the execution no longer accepts this node's task token")

    def _audit(self, kind: str, wf: dict[str, Any], node_id: str, status: str, duration: float | None = None,
               data: dict[str, Any] | None = None) -> None:
        self.deps.audit.append(AuditEntry(kind, workflow_chain(wf["workflow_id"]), tenant_id=wf["tenant_id"],
                                          event_id=wf.get("event_id"), workflow_id=wf["workflow_id"],
                                          strategy_id=wf.get("strategy_id"), node_id=node_id, status=status,
                                          duration=duration, data=data or {}))
