"""One measured run of C-1 on the embedded runtime, as a *profile*: what each accepted event cost in
requests, DynamoDB capacity, key heat, Lambda invocations, Step Functions transitions and log bytes
(``powerx-agent local load --heat``, ``powerx-agent cost``, ``bench/cost.py``).

The profile is plain JSON: :func:`powerx_agent.ops.cost.product_bill` turns it into dollars.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from powerx_agent import spec
from powerx_agent.local.meter import Meter, harness_client, heat_report

MAX_HISTORIES = 40  # execution histories read per state machine (a sample: they are all alike)
WORKFLOW_ACTIONS = ("powerx-agent-workflow",)


def measure(rt: Any, *, events: int = 40, rate: float = 10.0, tenant: str = "acme", drain_timeout: float = 300.0,
            target_rate: float = 2000.0, shards: Any = None, progress: Any = None) -> dict[str, Any]:
    """Drive ``events`` C-1 events at ``rate``/s through the runtime inside a :class:`Meter`; return the profile."""
    from powerx_agent.ingest.service import workflow_id_for
    from powerx_agent.loadtest import runs
    from powerx_agent.local.meter import forget_schemas

    forget_schemas()
    with Meter() as meter:
        result, produced = runs.run_product(rt, rate, events / rate, drain_timeout=drain_timeout, tenant=tenant,
                                            progress=progress)
    accepted = max(1, produced.sent)
    profile = meter.per_event(accepted)
    profile["sfn"] = sfn_profile(rt, {workflow_id_for(tenant, k) for k in produced.keys}, accepted)
    seconds = max(1e-6, meter.stopped - meter.started)
    profile["heat"] = heat_report(meter, accepted, seconds, target_rate, shards)[:40]
    profile["run"] = {"events": produced.sent, "completed": result.completed, "rate": rate,
                      "sustained_rate": result.sustained_rate, "seconds": round(seconds, 1), "tenant": tenant,
                      "target_rate": target_rate, "drained": result.drained}
    return profile


def sfn_profile(rt: Any, workflow_ids: set[str], events: int) -> dict[str, Any]:
    """State transitions (Standard), executions and critical-path tasks (Express), and history events
    (what execution logging writes), per accepted event, from the histories of this run's executions."""
    sfn = harness_client("stepfunctions", rt.endpoint)
    totals: Counter[str] = Counter()
    for machine in sfn.list_state_machines().get("stateMachines", []):
        if not machine["name"].startswith(spec.STATE_MACHINE_PREFIX):
            continue
        described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
        kind = described.get("type", "STANDARD")
        definition = json.loads(described["definition"])
        ours = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
                for e in page["executions"] if _workflow_of(e["name"]) in workflow_ids]
        if not ours:
            continue
        sample = ours[:MAX_HISTORIES]
        seen: Counter[str] = Counter()
        for execution in sample:
            events_ = [e for page in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution["executionArn"]) for e in page["events"]]
            entered = [e for e in events_ if e["type"].endswith("StateEntered")]
            scheduled = sum(1 for e in events_ if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
            task_entered = sum(1 for e in events_ if e["type"] == "TaskStateEntered")
            seen["transitions"] += len(entered) + max(0, scheduled - task_entered)
            seen["history_events"] += len(events_)
            names = {e["stateEnteredEventDetails"]["name"] for e in entered}
            nodes, actions = critical_tasks(definition, names)
            seen["states"] += len(entered)
            seen["critical_nodes"] += nodes
            seen["critical_actions"] += actions
        scale = len(ours) / len(sample)
        if kind == "EXPRESS":
            totals["express_executions"] += len(ours)
            totals["express_states"] += seen["states"] * scale
            totals["express_critical_nodes"] += seen["critical_nodes"] * scale
            totals["express_critical_actions"] += seen["critical_actions"] * scale
        else:
            totals["standard_executions"] += len(ours)
            totals["standard_transitions"] += seen["transitions"] * scale
        totals["logged_history_events"] += seen["history_events"] * scale
    return {k: round(v / max(1, events), 3) for k, v in sorted(totals.items())}


def _workflow_of(execution_name: str) -> str:
    """The workflow id an execution belongs to (``<id>``, a retry ``<id>-r<n>``, a continuation ``<id>--...``)."""
    return re.sub(r"-r\d+$", "", execution_name.split("--")[0])


def critical_tasks(definition: dict[str, Any], entered: set[str], depth: int = 0) -> tuple[int, int]:
    """(node tasks, workflow-action tasks) along the longest path of the states that were entered:
    a Parallel counts its longest branch; a Choice follows the branch that was taken."""
    if depth > 16:
        return 0, 0
    states = definition.get("States", {})
    name = definition.get("StartAt")
    nodes = actions = 0
    seen: set[str] = set()
    while name and name in states and name not in seen:
        seen.add(name)
        state = states[name]
        kind = state.get("Type")
        if kind == "Task" and name in entered:
            function = str((state.get("Parameters") or {}).get("FunctionName", ""))
            if any(a in function for a in WORKFLOW_ACTIONS):
                actions += 1
            else:
                nodes += 1
        elif kind == "Parallel":
            branches = [critical_tasks(b, entered, depth + 1) for b in state.get("Branches", [])]
            best = max(branches, key=lambda b: (b[0], b[1]), default=(0, 0))
            nodes += best[0]
            actions += best[1]
        if kind == "Choice":
            options = [c.get("Next") for c in state.get("Choices", [])] + [state.get("Default")]
            name = next((o for o in options if o in entered), None)
            continue
        name = state.get("Next")
    return nodes, actions
