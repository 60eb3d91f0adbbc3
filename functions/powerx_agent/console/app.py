"""The operations console (Flask, server-rendered Jinja2 pages with autoescape, no JavaScript).

Pages and the JSON API call the same functions of :mod:`powerx_agent.console.api`. Every response
carries a strict Content-Security-Policy (no script at all, styles from the console itself); every
action is a POST that needs the console's CSRF token and an explicit confirmation; requests whose
``Host`` is not the console's own loopback address are refused (DNS rebinding), as are POSTs from
another ``Origin``. Errors are answered with their code and message, never a stack trace.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from powerx_agent.console import api
from powerx_agent.console.api import ApiError

HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
LIVE_REFRESH_SECONDS = 3
MAX_BODY_BYTES = 300 * 1024


class ConsoleContext:
    """What the console is bound to: the operator's Deps (a callable, so each request reads fresh
    settings), who they are for the audit trail, and what they target (shown in the header)."""

    def __init__(self, deps: Callable[[], Any], actor: str, target: str) -> None:
        self.deps = deps
        self.actor = actor
        self.target = target
        self.csrf = secrets.token_urlsafe(32)
        self.allowed_hosts: set[str] = set()
        self.memo: dict[str, Any] = {}  # the last audit verify this console ran (Health)


def _iso(value: Any) -> str:
    try:
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value or "")


def create_app(context: ConsoleContext) -> Flask:
    app = Flask("powerx_agent.console", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    app.jinja_env.autoescape = True
    app.jinja_env.filters["iso"] = _iso
    app.jinja_env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    app.jinja_env.globals.update(ctx=context, statuses=api.WORKFLOW_STATUSES)

    # -- guards ----------------------------------------------------------------------------------
    @app.before_request
    def guard() -> Any:
        if context.allowed_hosts and request.host not in context.allowed_hosts:
            return _error(ApiError(421, "console.bad_host", "this console answers on its own loopback address only"))
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] not in context.allowed_hosts:
                return _error(ApiError(403, "console.bad_origin", "actions are taken from the console's own pages"))
            sent = (request.headers.get("X-CSRF-Token") if request.path.startswith("/api/")
                    else request.form.get("csrf")) or ""
            if not hmac.compare_digest(sent.encode(), context.csrf.encode()):
                return _error(ApiError(403, "console.csrf", "missing or wrong CSRF token: reload the page and "
                                                            "try again"))
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _wants_json() -> bool:
        return request.path.startswith("/api/")

    def _error(exc: ApiError) -> Any:
        if _wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render_template("error.html", error=exc), exc.status

    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError) -> Any:
        return _error(exc)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Any:
        code = {404: "console.not_found", 405: "console.method_not_allowed", 413: "console.too_large"}.get(
            exc.code or 0, "console.http_error")
        return _error(ApiError(exc.code or 500, code, exc.description or exc.name))

    @app.errorhandler(Exception)
    def on_error(exc: Exception) -> Any:
        # the operator sees what failed; the trace goes to the console's terminal, never to the page
        sys.stderr.write(f"console: {request.method} {request.path} failed\n{traceback.format_exc(limit=8)}")
        return _error(ApiError(500, "console.internal", f"{type(exc).__name__}: {str(exc)[:300]} "
                                                        "(details in the terminal that runs the console)"))

    def deps() -> Any:
        return context.deps()

    def confirmed() -> None:
        body = request.get_json(silent=True) if _wants_json() else request.form
        if not body or str(body.get("confirm")).lower() not in ("yes", "true"):
            raise ApiError(400, "console.not_confirmed", "confirm the action (tick the confirmation box; API: "
                                                        '"confirm": true)')

    def field(name: str) -> str | None:
        body = (request.get_json(silent=True) or {}) if _wants_json() else request.form
        value = body.get(name)
        return None if value is None else str(value)

    # -- JSON API --------------------------------------------------------------------------------
    @app.get("/api/session")
    def api_session() -> Any:
        return jsonify({"actor": context.actor, "target": context.target, "csrf_token": context.csrf})

    @app.get("/api/workflows")
    def api_workflows() -> Any:
        return jsonify(api.workflows(deps(), request.args))

    @app.get("/api/workflows/<workflow_id>")
    def api_workflow(workflow_id: str) -> Any:
        return jsonify(api.workflow(deps(), workflow_id))

    @app.post("/api/workflows/<workflow_id>/retry")
    def api_retry(workflow_id: str) -> Any:
        confirmed()
        return jsonify(api.retry(deps(), workflow_id, context.actor, field("from") or None))

    @app.get("/api/reviews")
    def api_reviews() -> Any:
        return jsonify(api.reviews(deps(), request.args))

    @app.get("/api/reviews/<review_id>")
    def api_review(review_id: str) -> Any:
        return jsonify(api.review(deps(), review_id))

    @app.post("/api/reviews/<review_id>/<action>")
    def api_decide(review_id: str, action: str) -> Any:
        outcome = {"approve": "approved", "reject": "rejected"}.get(action)
        if outcome is None:
            abort(404)
        confirmed()
        return jsonify(api.decide(deps(), review_id, outcome, context.actor, field("reason")))

    @app.get("/api/events")
    def api_events() -> Any:
        return jsonify(api.events(deps(), request.args))

    @app.post("/api/events/<path:event_ref>/replay")
    def api_replay(event_ref: str) -> Any:
        dry_run = str(field("dry_run")).lower() in ("true", "yes", "1")
        if not dry_run:
            confirmed()
        return jsonify(api.replay(deps(), event_ref, context.actor, dry_run))

    @app.get("/api/strategies")
    def api_strategies() -> Any:
        return jsonify(api.strategies(deps(), request.args))

    @app.get("/api/strategies/<strategy_id>/diff")
    def api_diff(strategy_id: str) -> Any:
        return jsonify(api.strategy_diff(deps(), strategy_id, request.args))

    @app.get("/api/strategies/<strategy_id>/canary")
    def api_canary(strategy_id: str) -> Any:
        return jsonify(api.canary_status(deps(), strategy_id))

    @app.post("/api/strategies/<strategy_id>/canary/<action>")
    def api_canary_act(strategy_id: str, action: str) -> Any:
        if action not in api.CANARY_ACTIONS:
            abort(404)
        confirmed()
        return jsonify(api.canary_act(deps(), strategy_id, action, context.actor, field("reason")))

    @app.post("/api/strategies/test")
    def api_strategy_test() -> Any:
        return jsonify(api.strategy_test(deps(), field("event") or "", field("revision")))

    @app.get("/api/health")
    def api_health() -> Any:
        return jsonify(api.health(deps(), request.args, context.memo))

    # -- pages -----------------------------------------------------------------------------------
    def page(template: str, **values: Any) -> str:
        return render_template(template, request_args=request.args, now=time.time(), **values)

    @app.get("/")
    def index() -> Any:
        return redirect(url_for("workflows_page"))

    @app.get("/workflows")
    def workflows_page() -> Any:
        return page("workflows.html", data=api.workflows(deps(), request.args))

    @app.get("/workflows/<workflow_id>")
    def workflow_page(workflow_id: str) -> Any:
        data = api.workflow(deps(), workflow_id)
        svg = api.workflow_graph_svg(data)
        return page("workflow.html", data=data, svg=Markup(svg) if svg else None,
                    refresh=LIVE_REFRESH_SECONDS if data["live"] else None)

    @app.route("/workflows/<workflow_id>/retry", methods=["GET", "POST"])
    def retry_page(workflow_id: str) -> Any:
        data = api.workflow(deps(), workflow_id)
        if request.method == "GET":
            return page("confirm_retry.html", data=data)
        confirmed()
        result = api.retry(deps(), workflow_id, context.actor, field("from") or None)
        return page("done.html", title=f"Retrying {workflow_id}", result=result,
                    back=url_for("workflow_page", workflow_id=workflow_id))

    @app.get("/reviews")
    def reviews_page() -> Any:
        return page("reviews.html", data=api.reviews(deps(), request.args))

    @app.route("/reviews/<review_id>/<action>", methods=["GET", "POST"])
    def decide_page(review_id: str, action: str) -> Any:
        outcome = {"approve": "approved", "reject": "rejected"}.get(action)
        if outcome is None:
            abort(404)
        if request.method == "GET":
            return page("confirm_review.html", review=api.review(deps(), review_id), action=action)
        confirmed()
        result = api.decide(deps(), review_id, outcome, context.actor, field("reason"))
        return page("done.html", title=f"Review {review_id} {outcome}", result=result,
                    back=url_for("workflow_page", workflow_id=result.get("workflow_id"))
                    if str(result.get("workflow_id", "")).startswith("wf-") else url_for("reviews_page"))

    @app.get("/events")
    def events_page() -> Any:
        return page("events.html", data=api.events(deps(), request.args))

    @app.route("/events/<path:event_ref>/replay", methods=["GET", "POST"])
    def replay_page(event_ref: str) -> Any:
        if request.method == "GET":  # the dry run comes first, always
            return page("confirm_replay.html", event_ref=event_ref,
                        dry=api.replay(deps(), event_ref, context.actor, dry_run=True))
        confirmed()
        result = api.replay(deps(), event_ref, context.actor, dry_run=False)
        return page("done.html", title=f"Replayed {event_ref}", result=result, back=url_for("events_page"))

    @app.get("/strategies")
    def strategies_page() -> Any:
        return page("strategies.html", data=api.strategies(deps(), request.args))

    @app.get("/strategies/<strategy_id>/diff")
    def diff_page(strategy_id: str) -> Any:
        data = api.strategy_diff(deps(), strategy_id, request.args)
        return page("diff.html", data=data, rows=_side_by_side(data["left"], data["right"]))

    @app.route("/strategies/<strategy_id>/canary/<action>", methods=["GET", "POST"])
    def canary_page(strategy_id: str, action: str) -> Any:
        if action not in api.CANARY_ACTIONS:
            abort(404)
        if request.method == "GET":
            return page("confirm_canary.html", canary=api.canary_status(deps(), strategy_id), action=action)
        confirmed()
        result = api.canary_act(deps(), strategy_id, action, context.actor, field("reason"))
        done = "promoted" if action == "promote" else "aborted"
        return page("done.html", title=f"{strategy_id}'s canary {done}", result=result,
                    back=url_for("strategies_page", strategy=strategy_id))

    @app.route("/strategies/test", methods=["GET", "POST"])
    def test_page() -> Any:
        if request.method == "GET":  # ?revision=: a decision record's library (the workflow page links here)
            return page("strategy_test.html", event_text="", result=None, revision=request.args.get("revision", ""))
        text, revision = field("event") or "", field("revision") or ""
        return page("strategy_test.html", event_text=text, revision=revision,
                    result=api.strategy_test(deps(), text, revision))

    @app.get("/health")
    def health_page() -> Any:
        return page("health.html", data=api.health(deps(), request.args, context.memo))

    return app


def _side_by_side(left: str, right: str) -> list[tuple[str, str, str]]:
    """Rows (left line, right line, kind: same | changed | removed | added) of two YAML texts."""
    import difflib

    a, b = left.splitlines(), right.splitlines()
    rows: list[tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(a[i], b[j1 + k], "same") for k, i in enumerate(range(i1, i2))]
        elif op == "replace":
            for k in range(max(i2 - i1, j2 - j1)):
                rows.append((a[i1 + k] if i1 + k < i2 else "", b[j1 + k] if j1 + k < j2 else "", "changed"))
        elif op == "delete":
            rows += [(a[i], "", "removed") for i in range(i1, i2)]
        else:
            rows += [("", b[j], "added") for j in range(j1, j2)]
    return rows
