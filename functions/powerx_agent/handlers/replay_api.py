"""POST /internal/agent/events: signed manual replay of one event onto the bus.

A named caller (``X-PowerX-Caller``) signs with its own key and may replay only the tenants its key is
scoped to. Answers 202 accepted, 200 duplicate (with the workflow id), 400 invalid (``source.not_routed``
for a source the bus does not route, naming the accepted ones), 401 bad signature or unknown caller,
403 tenant not allowed (for this caller, or for the tenant), 409 idempotency conflict, 413 too large.
Every refusal of the event itself is audited (``event.rejected``) and counted like an ingest rejection.
"""

import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from powerx_agent import spec, telemetry
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.deps import Deps, get_deps
from powerx_agent.errors import EventRejected
from powerx_agent.handlers._api import install_error_handler, json_response, read_body, replay_caller
from powerx_agent.handlers._common import logger, tracer
from powerx_agent.ingest.envelope import TENANT_RE, limits_rejection
from powerx_agent.ingest.replay import submit_replay
from powerx_agent.ingest.service import UNREGISTERED_TENANT, workflow_id_for
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError, loads
from powerx_agent.signing import Caller

ACTOR_HEADER = "X-PowerX-Actor"
_ACTOR = re.compile(r"[\x20-\x7e]{1,128}")

app = APIGatewayRestResolver()
install_error_handler(app, logger)


def _status(code: str) -> int:
    if code.startswith(("tenant.", "replay.")):
        return 403
    if code.startswith("idempotency."):
        return 409
    return 413 if code == "envelope.too_large" else 400


@app.post("/internal/agent/events")
def replay() -> Response:
    deps = get_deps()
    body = read_body(app)
    if isinstance(body, Response):
        return body
    caller = replay_caller(app, deps, body)
    if isinstance(caller, Response):
        return caller
    try:
        # the body is an EventBridge event: its detail (level 2) may nest MAX_DEPTH levels
        event = loads(body or b"null", root="", max_depth=MAX_DEPTH + 1)
    except JsonLimitError as exc:
        if exc.kind == "invalid_json":
            return json_response(400, {"code": "request.invalid_json", "message": exc.message})
        return _refused(deps, None, caller, limits_rejection(exc))
    actor = (app.current_event.headers or {}).get(ACTOR_HEADER) or ""
    replayed_by = caller.caller_id + (f" ({actor})" if _ACTOR.fullmatch(actor) else "")
    try:
        with telemetry.work("replay", caller=caller.caller_id):
            status, answer = submit_replay(deps, event, caller=caller, replayed_by=replayed_by)
            telemetry.logger.info(f"replay answered {status}", extra={"status": status,
                                                                      "outcome": answer.get("status")})
    except EventRejected as exc:
        return _refused(deps, event, caller, exc)
    return json_response(status, answer)


def _refused(deps: Deps, event: Any, caller: Caller, exc: EventRejected) -> Response:
    """Answer a refused event, audited and counted as ingest does (one fixed dimension value for a
    tenant that is not registered)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    tenant_id = detail.get("tenant_id") if isinstance(detail, dict) else None
    key = detail.get("idempotency_key") if isinstance(detail, dict) else None
    registered = isinstance(tenant_id, str) and re.match(TENANT_RE, tenant_id) is not None \
        and deps.tenants.get(tenant_id) is not None
    known = registered and isinstance(key, str) and 0 < len(key) <= 128
    chain = workflow_chain(workflow_id_for(tenant_id, key)) if known else f"REJ#replay#{caller.caller_id}"
    deps.audit.append(AuditEntry("event.rejected", chain, tenant_id=tenant_id if registered else None,
                                 status="REJECTED", data={**exc.to_dict(), "via": "replay_api",
                                                          "caller": caller.caller_id}))
    metrics = deps.metrics()
    try:
        metrics.add(spec.METRICS["rejected"], 1, tenant=tenant_id if registered else UNREGISTERED_TENANT,
                    code=exc.code)
    finally:
        metrics.flush()
    return json_response(_status(exc.code), exc.to_dict())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
