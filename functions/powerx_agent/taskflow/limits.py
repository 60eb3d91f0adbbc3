"""Service limits the compiled taskflow must respect (docs/taskflow.md, "Limits").

AWS Step Functions quotas (not adjustable): a state machine definition is at most 1 MiB, an
execution's input and every state's input/output at most 256 KiB, a Standard execution's history
at most 25,000 events, an Express execution at most 5 minutes. The state count cap is ours: AWS
has none besides the definition size, but we keep flows readable and their history estimate far
below the quota.

Pure domain: no boto3, no I/O.
"""

from __future__ import annotations

from typing import Any

from powerx_agent.errors import TaskflowError

__all__ = [
    "EXPRESS_MAX_SECONDS",
    "MAX_DEFINITION_BYTES",
    "MAX_HISTORY_EVENTS",
    "MAX_PAYLOAD_BYTES",
    "MAX_STATES",
    "MAX_STATE_NAME",
    "check_definition_size",
    "check_execution_input",
    "check_history_events",
    "check_state_count",
    "count_states",
    "estimate_history_events",
]

MAX_DEFINITION_BYTES = 1_048_576
MAX_PAYLOAD_BYTES = 262_144
MAX_HISTORY_EVENTS = 25_000
MAX_STATES = 1_000
MAX_STATE_NAME = 80
EXPRESS_MAX_SECONDS = 300

# Standard history events per state (AWS event types; see docs/taskflow.md)
EXECUTION_EVENTS = 2  # ExecutionStarted + ExecutionSucceeded/Failed/TimedOut
TASK_ENTER_EXIT = 2  # TaskStateEntered + TaskStateExited
TASK_PER_ATTEMPT = 3  # TaskScheduled + TaskStarted + TaskSucceeded/Failed/TimedOut
TASK_PER_WAIT_ATTEMPT = 4  # ... + TaskSubmitted (waitForTaskToken)
CHOICE_EVENTS = 2  # ChoiceStateEntered + ChoiceStateExited
PARALLEL_EVENTS = 4  # ParallelStateEntered/Started/Succeeded/Exited
FAIL_EVENTS = 1  # FailStateEntered


def _exceeded(limit: int, actual: int, said: str, advice: str, *, code: str, where: str | None) -> TaskflowError:
    """The error of every limit check: what was measured, by how much it is over, what to do."""
    pct = 100.0 * (actual - limit) / limit
    return TaskflowError(f"{said} ({actual:,} > {limit:,}, over by {actual - limit:,} ({pct:.1f}%)). {advice}",
                         code=code, where=where, details={"limit": limit, "actual": actual, "over": actual - limit})


def check_definition_size(definition_json: str, *, where: str | None = None) -> int:
    """Raise ``limit.definition_size`` when the definition exceeds 1 MiB; returns its size."""
    size = len(definition_json.encode("utf-8"))
    if size > MAX_DEFINITION_BYTES:
        raise _exceeded(MAX_DEFINITION_BYTES, size,
                        f"the state machine definition is {size:,} bytes; Step Functions accepts at most "
                        f"{MAX_DEFINITION_BYTES:,} bytes",
                        "Large node 'input' templates are the usual cause: move bulk data out of the strategy",
                        code="limit.definition_size", where=where)
    return size


def check_execution_input(payload_json: str, *, where: str | None = None) -> int:
    """Raise ``limit.payload_size`` when an execution input exceeds 256 KiB; returns its size."""
    size = len(payload_json.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise _exceeded(MAX_PAYLOAD_BYTES, size,
                        f"the execution input is {size:,} bytes; Step Functions accepts at most "
                        f"{MAX_PAYLOAD_BYTES:,} bytes",
                        "Keep rendered variables small (pass references, not documents)",
                        code="limit.payload_size", where=where)
    return size


def count_states(definition: dict[str, Any]) -> int:
    """Every state of ``definition``, those inside Parallel branches included."""
    total = 0
    for state in definition.get("States", {}).values():
        total += 1
        for branch in state.get("Branches", ()):
            total += count_states(branch)
    return total


def check_state_count(count: int, *, where: str | None = None) -> int:
    if count > MAX_STATES:
        raise _exceeded(MAX_STATES, count,
                        f"the state machine would have {count:,} states; this engine allows at most {MAX_STATES:,}",
                        "Split the flow into several strategies", code="limit.state_count", where=where)
    return count


def _task_events(state: dict[str, Any]) -> int:
    # every retrier can fire up to its MaxAttempts independently: count them all (upper bound)
    attempts = 1 + sum(int(r.get("MaxAttempts", 3)) for r in state.get("Retry", ()))
    per = TASK_PER_WAIT_ATTEMPT if str(state.get("Resource", "")).endswith(".waitForTaskToken") \
        else TASK_PER_ATTEMPT
    return TASK_ENTER_EXIT + per * attempts


def _successors(state: dict[str, Any]) -> list[str]:
    nexts = [c["Next"] for c in state.get("Choices", ())]
    if "Default" in state:
        nexts.append(state["Default"])
    if "Next" in state:
        nexts.append(state["Next"])
    return nexts


def _own_events(state: dict[str, Any]) -> int:
    kind = state["Type"]
    if kind == "Task":
        return _task_events(state)
    if kind == "Choice":
        return CHOICE_EVENTS
    if kind == "Parallel":
        return PARALLEL_EVENTS + sum(
            _path_events(b["States"], b["StartAt"], frozenset()) for b in state["Branches"])
    if kind == "Fail":
        return FAIL_EVENTS
    return 2


def _path_events(states: dict[str, Any], start: str, end_names: frozenset[str]) -> int:
    """Worst-case events from ``start`` until the path ends or reaches one of ``end_names``
    (longest path over the acyclic state graph; Catch edges are not followed). Iterative, so
    long chains do not hit Python's recursion limit."""
    # post-order DFS gives every state after all states it leads to
    post: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(start, False)]
    while stack:
        name, done = stack.pop()
        if done:
            post.append(name)
            continue
        if name in seen or name in end_names:
            continue
        seen.add(name)
        stack.append((name, True))
        stack.extend((n, False) for n in _successors(states[name]) if n not in seen)
    best: dict[str, int] = {}
    for name in post:
        state = states[name]
        best[name] = _own_events(state) + max(
            (best.get(n, 0) for n in _successors(state) if n not in end_names), default=0)
    return best.get(start, 0)


def estimate_history_events(definition: dict[str, Any], *, escalate: str = "Escalate") -> int:
    """Upper bound on a Standard execution's history events.

    Every state on the longest path is entered, scheduled, started and exited with all its
    retries; every Parallel branch runs completely; the run then ends either normally or, after
    the last node's last attempt failed, through the escalation states.
    """
    states = definition["States"]
    stop = frozenset({escalate}) if escalate in states else frozenset()
    main = _path_events(states, definition["StartAt"], stop)
    tail = _path_events(states, escalate, frozenset()) if escalate in states else 0
    return EXECUTION_EVENTS + main + tail


def check_history_events(events: int, *, where: str | None = None) -> int:
    if events > MAX_HISTORY_EVENTS:
        raise _exceeded(MAX_HISTORY_EVENTS, events,
                        f"a worst-case execution would write about {events:,} history events; Step Functions "
                        f"keeps at most {MAX_HISTORY_EVENTS:,} per execution",
                        "Reduce retry attempts or split the flow", code="limit.history_events", where=where)
    return events
