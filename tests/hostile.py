"""Hypothesis strategies for hostile input: what an attacker or a careless producer sends.

Shared by the fuzz suites (``tests/*/test_fuzz_*.py``). Values are drawn from the classes of the bad
input corpus (``tests/bad_inputs/``): numbers JSON or DynamoDB cannot hold, lone surrogates, nesting
past the limits, sizes around the limits, text that looks like code, paths or markup, wrong types.

``FUZZ_SCALE`` (environment, default 1) multiplies every suite's number of examples: ``make fuzz``
runs the same properties far longer than ``make test`` does.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import strategies as st

FUZZ_SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1") or 1))


def examples(n: int) -> int:
    """``n`` examples in ``make test``, ``n * FUZZ_SCALE`` in ``make fuzz``."""
    return n * FUZZ_SCALE


# -- scalars -----------------------------------------------------------------------------------------
HOSTILE_TEXT = ["", " ", "\x00", "\u202e", "\ud800", "x\udfffy", "${7*7}", "{{7*7}}", "$(id)", "`id`",
                "__import__('os').system('id')", "../../x<script>", "<img src=x onerror=alert(1)>",
                "' OR 1=1 --", "%00", "\u6f22\u5b57", "\U0001f4a5", "A" * 129, "a" * 1025, "-", "acme ",
                "ACME", "0", "1e999", "NaN", "²", "\u0661\u0662", "cb-" + "0" * 24, "rv-" + "0" * 20]

numbers = st.one_of(
    st.integers(-(10**45), 10**45),  # DynamoDB holds 38 significant digits
    st.sampled_from([10**40, -(10**41), int("9" * 400), 0, -1, 2**63, 2**128]),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN and +-Infinity are not JSON
    st.sampled_from([1e-200, -1e-131, 1e126, 1e-130, 9.9e125, 0.1, -0.0]),
)
texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=20),
                  st.text(alphabet=st.characters(codec=None, categories=("Cs", "Cc", "Lo", "Nd", "No")),
                          max_size=8))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def nested(depth: int, leaf: Any = 1, kind: str = "object") -> Any:
    """A value nesting ``depth`` objects (or arrays) around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"x": value} if kind == "object" else [value]
    return value


deep_values = st.builds(nested, st.sampled_from([20, 23, 24, 25, 40, 300, 600]), scalars,
                        st.sampled_from(["object", "array"]))
big_strings = st.sampled_from([64 * 1024, 180 * 1024, 300 * 1024]).map(lambda n: "\u6f22" * (n // 3))

json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(texts, kids, max_size=4), max_leaves=12)
hostile_values = st.one_of(json_values, deep_values, big_strings)


# -- the envelope (docs/intake.md) ------------------------------------------------------------------
ENVELOPE_FIELDS = ["tenant_id", "event_id", "idempotency_key", "occurred_at", "context", "payload",
                   "replay_of", "replayed_by", "context.traceparent", "payload.job", "payload.job.id",
                   "payload.job.rows", "payload.request.kind", "unknown_field"]
TENANTS = ["acme", "globex", "initech", "nobody", "ACME", "../../x<script>", ""]
EVENT_TYPES = ["plugin.job.completed", "plugin.job.failed", "tenant.request.pending", "tenant.request.approved",
               "not.allowed", "", "a" * 200, "bad type", "\u6f22"]
SOURCES = ["powerx.plugins", "powerx.tenants", "powerx.replay", "powerx.ops", "evil.source", "aws.events", "",
           "\u6f22" * 300]


def base_detail(uid: str) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-{uid}", "idempotency_key": f"key-{uid}",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "fuzz"},
            "payload": {"job": {"id": uid, "type": "report", "rows": 10}}}


def _set(detail: dict[str, Any], field: str, value: Any, delete: bool) -> None:
    *parents, leaf = field.split(".")
    target: Any = detail
    for part in parents:
        if not isinstance(target, dict):
            return
        target = target.setdefault(part, {}) if isinstance(target.get(part, {}), dict) else target[part]
    if not isinstance(target, dict):
        return
    if delete:
        target.pop(leaf, None)
    else:
        target[leaf] = value


mutation = st.tuples(st.sampled_from(ENVELOPE_FIELDS), st.one_of(hostile_values, st.sampled_from(TENANTS)),
                     st.booleans())


@st.composite
def events(draw: Any, uid: str, sources: list[str] | None = None) -> Any:
    """An EventBridge event around an envelope that is valid but for a few hostile mutations (or, now
    and then, not an event at all)."""
    shape = draw(st.sampled_from(["mutated"] * 8 + ["detail_text", "not_an_object"]))
    if shape == "not_an_object":
        return draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    detail = base_detail(uid)
    for field, value, delete in draw(st.lists(mutation, min_size=0, max_size=3)):
        _set(detail, field, value, delete)
    event: dict[str, Any] = {
        "version": "0", "id": f"bus-{uid}", "account": "123456789012", "region": "us-east-1",
        "time": "2026-11-28T10:00:00Z", "resources": [],
        "source": draw(st.sampled_from(sources or SOURCES[:3]) | st.sampled_from(SOURCES)),
        "detail-type": draw(st.sampled_from(EVENT_TYPES[:4]) | st.sampled_from(EVENT_TYPES)),
        "detail": detail,
    }
    if shape == "detail_text":  # detail as JSON text: deeper than json.dumps could write, or broken
        event["detail"] = draw(st.sampled_from([
            '{"x":' * 5000 + "1" + "}" * 5000, "[" * 100_000, '{"tenant_id": "acme", "payload": {"n": 1e999}}',
            '{"tenant_id": "acme"', "null", '"text"', json.dumps(detail)[:-1] + ', "n": NaN}']))
    return event
