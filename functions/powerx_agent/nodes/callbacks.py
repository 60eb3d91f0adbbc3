"""Callbacks that resume waiting nodes: asynchronous plugins and manual reviews.

A callback id or review id maps to the task token stored server side. Everything about the
request is validated first (shape, and output that DynamoDB and Step Functions can hold: depth,
numbers, Unicode). Then the first callback *claims* the item (conditional OPEN → CLOSING), resumes
the execution, writes the node and the audit record, and only then closes it (CLOSING → CLOSED).
If any step after the claim fails, the claim is released (back to OPEN) and the caller is told to
retry (503 ``callback.unavailable``): a failure never leaves a callback closed with its work undone.
A second callback changes nothing and is answered with the first outcome (HTTP 409).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from powerx_agent import telemetry
from powerx_agent.adapters.aws import is_aws_error
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.escalation.backlog import emit_backlog
from powerx_agent.json_limits import JsonLimitError, check_value
from powerx_agent.nodes.runner import NodeRunner, small

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_id: str | None = Field(default=None, pattern=r"^cb-[0-9a-f]{24}$")
    review_id: str | None = Field(default=None, pattern=r"^rv-[0-9a-f]{20}$")
    outcome: Literal["succeeded", "failed", "approved", "rejected", "heartbeat"]
    output: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=2000)
    actor: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _one_id(self) -> CallbackRequest:
        if (self.callback_id is None) == (self.review_id is None):
            raise ValueError("give exactly one of callback_id or review_id")
        if self.callback_id and self.outcome in ("approved", "rejected"):
            raise ValueError("plugin callbacks use outcome succeeded or failed")
        if self.review_id and self.outcome in ("succeeded", "failed", "heartbeat"):
            raise ValueError("reviews use outcome approved or rejected")
        return self


@dataclass(frozen=True)
class CallbackResult:
    status: int
    body: dict[str, Any]


class Callbacks:
    def __init__(self, deps: Deps, metrics: Any) -> None:
        self.deps = deps
        self.metrics = metrics

    def handle(self, request: CallbackRequest) -> CallbackResult:
        with telemetry.work("callback", callback_id=request.callback_id, review_id=request.review_id,
                            outcome=request.outcome):
            result = self._handle(request)
            log = telemetry.logger.info if result.status < 400 else telemetry.logger.warning
            log(f"callback answered {result.status}", extra={"status": result.status, "code": result.body.get("code")})
            return result

    def _handle(self, request: CallbackRequest) -> CallbackResult:
        try:
            check_value(request.output, root="output")
        except JsonLimitError as exc:
            return CallbackResult(400, {"code": f"callback.{exc.kind}", "message": exc.message, "where": exc.where})
        if request.review_id:
            return self._review(request)
        return self._plugin(request)

    def _plugin(self, request: CallbackRequest) -> CallbackResult:
        assert request.callback_id
        item = self.deps.workflows.get_callback(request.callback_id)
        if item is None:
            return CallbackResult(404, {"code": "callback.unknown", "message": "no such callback id"})
        sfn = self.deps.state_machines
        if request.outcome == "heartbeat":
            if item["status"] != "OPEN":
                return CallbackResult(409, {"code": "callback.closed", "first_outcome": item.get("outcome")})
            sfn.heartbeat(item["task_token"])
            return CallbackResult(200, {"status": "heartbeat recorded"})
        pk = f"CB#{request.callback_id}"
        if not self.deps.workflows.claim(pk, request.outcome):
            first = self.deps.workflows.get_callback(request.callback_id) or {}
            return CallbackResult(409, {"code": "callback.duplicate", "first_outcome": first.get("outcome")})

        def work() -> None:
            wf = self._wf(item["workflow_id"])
            if request.outcome == "succeeded":
                sfn.succeed_task(item["task_token"], json.dumps(small(request.output or {})))
                NodeRunner(self.deps, self.metrics).succeed(wf, item["node_id"], request.output, None, None,
                                                            via="callback")
            else:
                NodeRunner(self.deps, self.metrics).fail(wf, item["node_id"], {"type": "CallbackFailed",
                                                                       "message": request.reason or ""}, via="callback")
                sfn.fail_task(item["task_token"], "CallbackFailed", request.reason or "the plugin reported a failure")
            self._audit(wf, item["node_id"], "callback.received", request)
            self.deps.workflows.finish_claim(pk, request.outcome)

        return self._claimed(pk, request.outcome, work)

    def _review(self, request: CallbackRequest) -> CallbackResult:
        assert request.review_id
        review = self.deps.workflows.get_review(request.review_id)
        if review is None:
            return CallbackResult(404, {"code": "review.unknown", "message": "no such review id"})
        actor = request.actor or "callback-api"
        pk = f"REVIEW#{request.review_id}"
        if not self.deps.workflows.claim(pk, request.outcome):
            first = self.deps.workflows.get_review(request.review_id) or {}
            return CallbackResult(409, {"code": "review.duplicate", "first_outcome": first.get("outcome")})

        def work() -> None:
            wf = self._wf(review["workflow_id"])
            # audited before the execution resumes, so the trail reads in causal order
            self._audit(wf, review.get("node_id"), "review.closed", request, actor=actor)
            token = review.get("task_token")
            if token:  # a manual_review node waits for this outcome
                sfn = self.deps.state_machines
                if request.outcome == "approved":
                    sfn.succeed_task(token, json.dumps({"review_id": request.review_id, "outcome": "approved"}))
                    NodeRunner(self.deps, self.metrics).succeed(wf, review["node_id"], {"approved_by": actor}, None,
                                                                None, via="review")
                else:
                    NodeRunner(self.deps, self.metrics).fail(wf, review["node_id"], {"type": "ReviewRejected",
                                                                         "message": request.reason or ""}, via="review")
                    sfn.fail_task(token, "ReviewRejected", request.reason or "rejected by reviewer")
            self.deps.workflows.finish_claim(pk, request.outcome, remove=("gsi1pk", "gsi1sk"),
                                             closed_by=actor, reason=request.reason or "")
            emit_backlog(self.deps, self.metrics)

        return self._claimed(pk, request.outcome, work)

    def _claimed(self, pk: str, outcome: str, work: Any) -> CallbackResult:
        """Run the work of a claimed callback or review; on any failure release the claim (so the
        caller's retry can close it) and answer 503 for an AWS-side failure."""
        try:
            work()
        except Exception as exc:
            try:
                self.deps.workflows.release_claim(pk, outcome)
            except Exception:  # noqa: BLE001 - the claim goes stale; a retry with the same outcome takes it
                pass
            if not is_aws_error(exc):
                raise
            return CallbackResult(503, {"code": "callback.unavailable",
                                        "message": f"not recorded, nothing was closed; retry ({type(exc).__name__})"})
        return CallbackResult(200, {"status": "accepted", "outcome": outcome})

    def _wf(self, workflow_id: str) -> dict[str, Any]:
        meta = self.deps.workflows.get(workflow_id) or {"workflow_id": workflow_id, "tenant_id": "unknown"}
        telemetry.bind(tenant_id=meta.get("tenant_id"), event_id=meta.get("event_id"), workflow_id=workflow_id,
                       traceparent=meta.get("traceparent"), strategy_id=meta.get("strategy_id"))
        return {k: meta.get(k) for k in ("workflow_id", "tenant_id", "event_id", "strategy_id")}

    def _audit(self, wf: dict[str, Any], node_id: str | None, kind: str, request: CallbackRequest,
               actor: str | None = None) -> None:
        self.deps.audit.append(AuditEntry(kind, workflow_chain(wf["workflow_id"]), tenant_id=wf["tenant_id"],
                                          event_id=wf.get("event_id"), workflow_id=wf["workflow_id"],
                                          strategy_id=wf.get("strategy_id"), node_id=node_id,
                                          status=request.outcome.upper(),
                                          data={"outcome": request.outcome, "reason": request.reason,
                                                "actor": actor, "id": request.callback_id or request.review_id}))
