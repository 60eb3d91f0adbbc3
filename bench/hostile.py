"""Worst-case inputs of every input surface: time and peak memory per input (docs/benchmarks-hostile.md).

Each row is one hostile input through the code that meets it first on that surface, in this process:
the envelope (``parse_event``: JSON limits, size, fields), a replay request (caller signature, then
the body), a callback body (limits, then the model), strategy YAML (``lint_text``), JSONPath
(compile, then a walk of a 256 KiB event), templates (variables that repeat each other), the matcher
(``strategy.evaluate.evaluate``, the one evaluation, on the largest events against lint-accepted
strategies built to be slow) and a CLI argument (``strategy test --event``). Time is the best of a few
runs (wall clock, shared machine); memory is the tracemalloc peak of one run. The matcher rows are
checked against the bound ``docs/strategies.md`` states.

Run: ``.venv/bin/python bench/hostile.py --out docs/benchmarks-hostile.md`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from powerx_agent.errors import AgentError
from powerx_agent.ingest.envelope import parse_event
from powerx_agent.json_limits import JsonLimitError, loads
from powerx_agent.nodes.callbacks import CallbackRequest
from powerx_agent.signing import Caller, SignatureError, signed_headers, verify_caller
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import build_library
from powerx_agent.strategy.lint import lint_text
from powerx_agent.strategy.paths import compile_path
from powerx_agent.strategy.templates import compile_variables

MATCHER_BOUND_MS = 5.0
KIB = 1024


def measure(fn: Callable[[], Any], runs: int = 3) -> tuple[float, float, str]:
    """(best ms, peak MiB, outcome) of ``fn``: its return value, or the code of what it raised."""
    times: list[float] = []
    outcome = ""
    while len(times) < runs and sum(times) < 2000:  # one run is enough for the slow rows
        start = time.perf_counter()
        outcome = _outcome(fn)
        times.append((time.perf_counter() - start) * 1000)
    tracemalloc.start()
    _outcome(fn)
    peak = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
    tracemalloc.stop()
    return min(times), peak, outcome


def _outcome(fn: Callable[[], Any]) -> str:
    try:
        result = fn()
    except (AgentError, JsonLimitError, SignatureError) as exc:
        return f"`{getattr(exc, 'code', None) or 'json.' + exc.kind}`"  # type: ignore[attr-defined]
    except ValueError as exc:  # pydantic's ValidationError
        return f"refused ({type(exc).__name__})"
    return str(result)[:60] if result is not None else "accepted"


# -- inputs -----------------------------------------------------------------------------------------
def detail(payload: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": "e-1", "idempotency_key": "k-1", "occurred_at": "2026-11-28T10:00:00Z",
            "payload": payload}


def event_text(payload_text: str) -> str:
    return ('{"source":"powerx.plugins","detail-type":"plugin.job.completed","detail":{"tenant_id":"acme",'
            '"event_id":"e-1","idempotency_key":"k-1","occurred_at":"2026-11-28T10:00:00Z","payload":'
            + payload_text + "}}")


def fill_to(size: int, unit: str, head: str = "[", tail: str = "]") -> str:
    """A JSON array of ``unit`` repeated to about ``size`` bytes of event."""
    room = size - len(event_text(head + tail)) - 16
    count = max(1, room // (len(unit) + 1))
    return head + ",".join([unit] * count) + tail


def as_event(text: str) -> dict[str, Any]:
    return loads(text, root="", max_depth=25)


MAX_EVENT = 256 * KIB - 64
NUMBERS = fill_to(MAX_EVENT, "0", '{"n":[', "]}")  # ~130,000 values: about the most an event can hold
OBJECTS = fill_to(MAX_EVENT, '{"a":1}', '{"n":[', "]}")  # ~32,000 objects
LONG_STRING = '{"s":"' + "a" * (MAX_EVENT - 400) + '"}'
CJK = '{"s":"' + "\u6f22" * ((MAX_EVENT - 400) // 3) + '"}'


def envelope_rows() -> list[tuple[str, Callable[[], Any]]]:
    deep = '{"x":' * 5000 + "1" + "}" * 5000
    return [
        ("256 KiB of numbers (~130,000 nodes), as JSON text", lambda: parse_event(json.loads(event_text(NUMBERS)))
         and "accepted"),
        ("256 KiB of numbers, detail given as text", lambda: parse_event(
            {"source": "powerx.plugins", "detail-type": "plugin.job.completed",
             "detail": json.dumps(detail(json.loads(NUMBERS)), separators=(",", ":"))}) and "accepted"),
        ("180 KB of CJK text (360 KB escaped)", lambda: parse_event(json.loads(event_text(CJK))) and "accepted"),
        ("5,000-deep detail text", lambda: parse_event({"source": "powerx.plugins",
                                                        "detail-type": "plugin.job.completed", "detail": deep})),
        ("262,144 `[` as detail text", lambda: parse_event({"source": "s", "detail-type": "t", "detail": "[" * 262_144})),
        ("a 4,000-digit number", lambda: parse_event(json.loads(event_text('{"n":' + "9" * 4000 + "}")))),
        ("300 KiB event", lambda: parse_event(json.loads(event_text(fill_to(300 * KIB, "0"))))),
    ]


REPLAY_KEY = "k" * 32
CALLERS = {"operator": Caller("operator", ("*",), (REPLAY_KEY,))}


def replay_rows() -> list[tuple[str, Callable[[], Any]]]:
    body = event_text(NUMBERS).encode()
    good = signed_headers(REPLAY_KEY, body, caller="operator")

    def signed_then_parsed() -> Any:
        verify_caller(good, body, CALLERS, 300)
        return parse_event(loads(body, root="", max_depth=25)) and "accepted"

    return [
        ("256 KiB body, signed: signature, then limits and envelope", signed_then_parsed),
        ("256 KiB body, wrong signature (refused before parsing)", lambda: verify_caller(
            {**good, "X-PowerX-Signature": "v1=" + "0" * 64}, body, CALLERS, 300)),
        ("5,000-digit timestamp", lambda: verify_caller({**good, "X-PowerX-Timestamp": "9" * 5000}, body, CALLERS, 300)),
        ("5,000-deep body, signed", lambda: loads(b'{"x":' * 5000 + b"1" + b"}" * 5000, root="", max_depth=25)),
    ]


def callback_rows() -> list[tuple[str, Callable[[], Any]]]:
    output = '{"callback_id":"cb-' + "0" * 24 + '","outcome":"succeeded","output":{"v":' + NUMBERS + "}}"

    def accepted() -> Any:
        return CallbackRequest.model_validate(loads(output, root="body")) and "accepted"

    return [
        ("256 KiB output of numbers", accepted),
        ("300-deep output", lambda: loads('{"output":' + '{"x":' * 300 + "1" + "}" * 301, root="body")),
        ("40-digit number in output", lambda: loads('{"output":{"v":' + "1" * 40 + "}}", root="body")),
    ]


STRATEGY_HEAD = "id: s\nversion: 1\nstatus: approved\nowner: o@x\non: {event: plugin.job.completed}\n"
FLOW = "flow:\n  nodes:\n    - {id: n, plugin: report-renderer}\n"


def yaml_rows() -> list[tuple[str, Callable[[], Any]]]:
    many_keys = STRATEGY_HEAD + "variables:\n" + "".join(f"  v{i}: $.payload.a{i}\n" for i in range(9000)) + FLOW
    many_in = STRATEGY_HEAD + "when: {path: $.payload.k, in: [" + ",".join(f"v{i}" for i in range(10_000)) + "]}\n" + FLOW
    deep = STRATEGY_HEAD + "variables:\n  v: {value: " + "[" * 70 + "]" * 70 + "}\n" + FLOW
    aliases = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    conditions = STRATEGY_HEAD + "when:\n  any:\n" + "".join(
        f"    - {{path: $.payload.a{i}, matches: '^(a|b)+{i}$'}}\n" for i in range(3000)) + FLOW

    def findings(text: str) -> Callable[[], Any]:
        return lambda: sorted({f.code for f in lint_text(text, "bench.yaml") if f.severity == "error"}) or "accepted"

    return [
        (f"{len(many_keys) // KIB} KiB: 9,000 variables", findings(many_keys)),
        (f"{len(many_in) // KIB} KiB: `in` with 10,000 items", findings(many_in)),
        (f"{len(conditions) // KIB} KiB: 3,000 `matches` conditions", findings(conditions)),
        ("alias bomb (3^9 copies if expanded)", findings(aliases)),
        ("70-deep flow value", findings(deep)),
        ("300 KiB file", findings(STRATEGY_HEAD + "description: '" + "x" * 300 * KIB + "'\n" + FLOW)),
    ]


def path_rows() -> list[tuple[str, Callable[[], Any]]]:
    numbers = {"payload": json.loads(NUMBERS)}
    objects = {"payload": json.loads(OBJECTS)}
    union = "$.payload" + "['a','a']" * 4  # 16 alternatives: the most lint accepts

    def walk(expr: str, doc: Any) -> Callable[[], Any]:
        path = compile_path(expr)
        return lambda: f"{len(path.get(doc))} values"

    return [
        ("compile a 512-character path", lambda: compile_path("$" + ".a" * 255) and "accepted"),
        ("`$.payload.n[*]` over ~130,000 numbers", walk("$.payload.n[*]", numbers)),
        ("`$..a` over ~32,000 objects", walk("$..a", objects)),
        ("`$.payload.n[?(@.a > 0)]` over ~32,000 objects", walk("$.payload.n[?(@.a > 0)]", objects)),
        ("16 alternatives (the most lint accepts) over ~32,000 objects",
         walk("$.payload.n[*][" + ",".join(["'a'"] * 16) + "]", objects)),
        ("`['a','a']` × 5 (refused)", lambda: compile_path(union + "['a','a']")),
    ]


def template_rows() -> list[tuple[str, Callable[[], Any]]]:
    raw: dict[str, Any] = {"a": "$.payload.s"}
    for i in range(1, 9):
        raw[f"v{i}"] = "".join(["${" + (f"v{i - 1}" if i > 1 else "a") + "}"] * 4)
    bomb = compile_variables(raw)
    whole = compile_variables({"a": "$", "b": "${a}"})
    doc = {"payload": {"s": "x" * 200_000}}
    return [
        ("8 variables, each 4× the last, over a 200 KB value (4^8 copies)", lambda: bomb.render(doc, {})),
        ("the whole 256 KiB event, then as text", lambda: whole.render({"payload": json.loads(NUMBERS)}, {})
         and "accepted"),
    ]


def _library(when_or_pattern: str) -> Any:
    return build_library([("bench.yaml", STRATEGY_HEAD + when_or_pattern + FLOW)], "r-bench")


MATCHER_CASES = [  # (strategy part, what the event holds, payload JSON)
    ("pattern: {detail: {payload: {s: [{wildcard: '*a*a*a*a*a*a*a*a*b'}]}}}\n", "a 256 KiB string", LONG_STRING),
    ("pattern: {detail: {payload: {s: [{equals-ignore-case: '\u212a\u212a\u212ab'}]}}}\n", "180 KB of CJK", CJK),
    ("pattern: {detail: {payload: {n: [{numeric: ['>', 5]}]}}}\n", "~130,000 numbers", NUMBERS),
    ("pattern: {detail: {payload: {n: {a: [2], b: [3]}}}}\n", "~32,000 objects (array consistency)", OBJECTS),
    ("when: {path: $.payload.s, matches: '(a|aa)+b'}\n", "a 256 KiB string (RE2)", LONG_STRING),
    ("when: {path: '$.payload.n[*]', contains: 7}\n", "~130,000 numbers", NUMBERS),
    ("when: {path: '$..a', contains: 2}\n", "~32,000 objects", OBJECTS),
    ("when: {path: '$.payload.n[?(@.a > 1)]', exists: true}\n", "~32,000 objects", OBJECTS),
    ("when: {path: $.payload.n, contains: 7}\n", "~130,000 numbers", NUMBERS),
    ("when: {path: $.payload.k, in: [" + ",".join(f"v{i}" for i in range(10_000)) + "]}\n", "~130,000 numbers",
     NUMBERS),
    ("when: {path: $.payload.s, prefix: aaaa}\nvariables: {v: '$'}\n", "a 256 KiB string, whole event as variable",
     LONG_STRING),
]


def matcher_rows() -> list[tuple[str, Callable[[], Any]]]:
    rows = []
    for part, what, payload in MATCHER_CASES:
        library = _library(part)
        facts = EventFacts("plugin.job.completed", "powerx.plugins", "acme", "e-1", "k-1",
                           detail(json.loads(payload)))

        def decide(library: Any = library, facts: EventFacts = facts) -> Any:
            found = evaluate(library, facts, {"owner": "o@x"})
            _ = found.variables, found.when
            return "matched" if found.matched else "not matched"

        label = part.split("\n")[0].replace("|", "\\|")
        rows.append((f"`{label[:70]}{'…' if len(label) > 70 else ''}` on {what}", decide))
    return rows


def cli_rows(tmp: Path) -> list[tuple[str, Callable[[], Any]]]:
    from typer.testing import CliRunner

    from powerx_agent.cli.main import app

    files = {"deep.json": '{"x":' * 100_000 + "1" + "}" * 100_000, "numbers.json": event_text(NUMBERS),
             "huge.json": "[" + "0," * 5_000_000 + "0]"}
    for name, text in files.items():
        (tmp / name).write_text(text)

    def run(name: str) -> Callable[[], Any]:
        return lambda: f"exit {CliRunner().invoke(app, ['strategy', 'test', '--event', str(tmp / name)]).exit_code}"

    return [("`strategy test --event` 100,000-deep file", run("deep.json")),
            ("`strategy test --event` 256 KiB of numbers", run("numbers.json")),
            ("`strategy test --event` 10 MB file", run("huge.json"))]


def table(rows: list[tuple[str, Callable[[], Any]]]) -> tuple[str, list[float]]:
    lines = ["| input | answer | time (ms) | peak memory (MiB) |", "|---|---|---:|---:|"]
    times = []
    for label, fn in rows:
        ms, peak, outcome = measure(fn)
        times.append(ms)
        lines.append(f"| {label} | {outcome.replace('|', '/')} | {ms:,.2f} | {peak:,.1f} |")
        print(f"{label[:80]:80s} {ms:9.2f} ms {peak:7.1f} MiB  {outcome}", flush=True)
    return "\n".join(lines), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-hostile.md"))
    args = parser.parse_args()
    build = Path("build")
    build.mkdir(exist_ok=True)
    sections = [("The envelope (`parse_event`)", envelope_rows()), ("Replay requests", replay_rows()),
                ("Callback bodies", callback_rows()), ("Strategy YAML (`lint_text`)", yaml_rows()),
                ("JSONPath", path_rows()), ("Templates (`Variables.render`)", template_rows()),
                ("CLI arguments", cli_rows(build))]
    body = []
    for title, rows in sections:
        text, _ = table(rows)
        body += [f"## {title}", "", text, ""]
    matcher_text, matcher_times = table(matcher_rows())
    worst = max(matcher_times)
    within = sum(1 for t in matcher_times if t <= MATCHER_BOUND_MS)
    verdict = "met" if worst <= MATCHER_BOUND_MS else "**not met**"
    out = f"""# Benchmarks: hostile input

Measured by `make bench` (`.venv/bin/python bench/hostile.py --out docs/benchmarks-hostile.md`): the worst
inputs of each surface found so far, through the code that meets them first. What each surface refuses,
with which code, is in [reliability.md](reliability.md#every-input-surface-its-limits-and-its-answer).

- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}
- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}
- time: best of 3 runs (wall clock, shared machine); memory: tracemalloc peak of one run

## The matcher bound

Target (docs/strategies.md): any event of ≤ 256 KiB against any lint-accepted strategy decides in
≤ {MATCHER_BOUND_MS:g} ms. Worst measured: **{worst:,.1f} ms** ({verdict}); {within} of {len(matcher_times)} worst cases
within the bound; median {statistics.median(matcher_times):,.1f} ms.

{matcher_text}

{chr(10).join(body)}"""
    args.out.write_text(out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
