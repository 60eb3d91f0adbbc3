"""ASL compiler: a strategy's flow → an Amazon States Language definition (docs/taskflow.md).

One state per node, named by the node id. Dependencies become chained states and ``Parallel``
states (via :func:`~powerx_agent.taskflow.builder.series_parallel`). Conditional nodes get a
``Choice`` state ``<id>.when`` reading ``$.when.<when_key>`` from the execution input and a
``<id>.skipped`` task that records the skip. Failures are caught into ``Escalate``; success ends
in ``Complete``. Every state keeps ``ResultPath: null``: the execution input passes through
unchanged and node outputs live in DynamoDB (written by the node Lambdas).

The output is deterministic: the same strategy and ARNs give byte-identical JSON, and the state
machine is named by its hash, so a changed definition is a new state machine.

Pure domain: no boto3, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from powerx_agent.errors import NOT_RETRYABLE, RETRYABLE, HandOff, TaskflowError
from powerx_agent.taskflow import limits
from powerx_agent.taskflow.builder import Dag, Leaf, Seq, SpTree, build_dag, series_parallel
from powerx_agent.taskflow.model import FlowSpec, NodeSpec

__all__ = [
    "COMPLETE",
    "ESCALATE",
    "ESCALATED",
    "ESCALATION_FAILED",
    "HANDED_OFF",
    "HANDOFF",
    "SKIPPED_AT_MATCH",
    "LAMBDA_SERVICE_ERRORS",
    "NON_RETRYABLE_ERRORS",
    "RETRYABLE_ERRORS",
    "CompiledFlow",
    "FunctionArns",
    "FlowTemplate",
    "compile_express_head",
    "compile_flow",
    "flow_for_event",
    "flow_template",
    "node_worst_case_seconds",
    "when_key",
]

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"

class FlowSource(Protocol):
    """What the compiler needs of a strategy: its identity and its flow."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def key(self) -> str: ...

    @property
    def flow(self) -> FlowSpec: ...


RETRYABLE_ERRORS = RETRYABLE  # powerx_agent.errors: the one list
NON_RETRYABLE_ERRORS = NOT_RETRYABLE
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
DEFAULT_RETRY_ATTEMPTS = 2  # attempts always count the first one: MaxAttempts = attempts - 1
WORKFLOW_RETRY_ATTEMPTS = 3

ESCALATE = "Escalate"
ESCALATED = "Escalated"
ESCALATION_FAILED = "Escalation failed"
COMPLETE = "Complete"
HANDOFF = "Continue in Standard"
HANDED_OFF = "Handed off"
HANDOFF_ERRORS = (HandOff.__name__, "States.Timeout", *LAMBDA_SERVICE_ERRORS)
"""What an Express head hands off instead of escalating: a node's retryable failure (the runner raises
``HandOff`` when its policy still has attempts), a task timeout, a Lambda service error."""
SKIPPED_AT_MATCH = "skipped_at_match"
"""``Result.action`` of an Express head's ``Pass`` state that stands for a node (``Result.node_id``)."""
HANDOFF_RESERVE_SECONDS = 30
"""Time an Express head keeps for its hand-off (or escalation) after its slowest path."""
FAILURE_PATH = "$.failure"

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class FunctionArns:
    """The Lambda functions the state machine invokes."""

    plugin: str
    notify: str
    review: str
    workflow: str

    def for_node(self, node: NodeSpec) -> str:
        return {"plugin": self.plugin, "notify": self.notify, "manual_review": self.review}[node.kind]


@dataclass(frozen=True)
class CompiledFlow:
    definition: dict[str, Any]
    definition_json: str
    sha256: str
    hash8: str
    state_machine_name: str
    type: Literal["STANDARD", "EXPRESS"]
    type_reason: str
    when_keys: dict[str, str]  # node id -> key in the execution input's "$.when"
    # extensions (defaults keep the contract's positional fields)
    worst_case_seconds: float = 0.0
    history_events: int = 0
    state_count: int = 0
    definition_bytes: int = 0
    strategy_id: str = ""
    strategy_version: int = 0
    # an Express head (compile_express_head): the nodes it leaves out, and the full (Standard) flow's
    # state machine name it continues in
    skipped_nodes: tuple[str, ...] = ()
    continuation: str = ""


def when_key(node_id: str) -> str:
    """The key of ``node_id`` under ``$.when`` (ASL reference paths must not contain '-')."""
    return node_id.replace("-", "_")


def _when_path(node_id: str) -> str:
    key = when_key(node_id)
    return f"$.when.{key}" if _SIMPLE_KEY.match(key) else f"$.when['{key}']"


# ------------------------------------------------------------------------------ timing model


def _retry_numbers(node: NodeSpec) -> tuple[int, int, float, int]:
    """(attempts, IntervalSeconds, BackoffRate, MaxDelaySeconds) of the node's transient retry."""
    if node.retry is None:
        return DEFAULT_RETRY_ATTEMPTS, 1, 2.0, 1
    r = node.retry
    return r.attempts, max(1, math.ceil(r.backoff)), float(r.rate), max(1, math.ceil(r.max_backoff))


def _task_timeout(node: NodeSpec) -> int:
    if node.callback is not None:
        return max(1, math.ceil(node.callback.timeout))
    if node.manual_review is not None:
        return max(1, math.ceil(node.manual_review.sla))
    return max(1, math.ceil(node.timeout))


def node_worst_case_seconds(node: NodeSpec) -> float:
    """Every attempt runs into its timeout, every retry waits its full (un-jittered) delay."""
    attempts, interval, rate, max_delay = _retry_numbers(node)
    delays = sum(min(interval * rate**i, max_delay) for i in range(attempts - 1))
    return attempts * _task_timeout(node) + delays


def _critical(tree: SpTree, dag: Dag, skipped: frozenset[str] = frozenset(),
              attempts: int | None = None) -> tuple[float, list[str]]:
    """The slowest path (seconds, node ids): ``skipped`` nodes take no time; ``attempts=1`` counts one
    attempt per node instead of the node's retries."""
    if isinstance(tree, Leaf):
        if tree.node in skipped:
            return 0.0, []
        node = dag.nodes[tree.node]
        secs = _task_timeout(node) if attempts == 1 else node_worst_case_seconds(node)
        return secs, [tree.node]
    if isinstance(tree, Seq):
        total, path = 0.0, []
        for part in tree.parts:
            secs, sub = _critical(part, dag, skipped, attempts)
            total += secs
            path += sub
        return total, path
    return max((_critical(b, dag, skipped, attempts) for b in tree.branches), key=lambda x: x[0])


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


# ------------------------------------------------------------------------------ state builders


def _retry(node: NodeSpec) -> list[dict[str, Any]]:
    attempts, interval, rate, max_delay = _retry_numbers(node)
    if attempts <= 1:
        return []
    errors = list(LAMBDA_SERVICE_ERRORS)
    if node.retry is not None:
        errors = [*RETRYABLE_ERRORS, *LAMBDA_SERVICE_ERRORS]
        if not node.waits_for_callback:
            errors.append("States.Timeout")
    entry: dict[str, Any] = {
        "ErrorEquals": errors,
        "MaxAttempts": attempts - 1,
        "IntervalSeconds": interval,
        "BackoffRate": rate,
        "JitterStrategy": "FULL",
    }
    if node.retry is not None:
        entry["MaxDelaySeconds"] = max_delay
    return [entry]


def _workflow_retry() -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "MaxAttempts": WORKFLOW_RETRY_ATTEMPTS - 1,
             "IntervalSeconds": 1, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]


def _catch(head: _Head | None = None) -> list[dict[str, Any]]:
    escalate = {"ErrorEquals": ["States.ALL"], "ResultPath": FAILURE_PATH, "Next": ESCALATE}
    if head is None or head.retries:
        return [escalate]
    return [{"ErrorEquals": list(HANDOFF_ERRORS), "ResultPath": FAILURE_PATH, "Next": HANDOFF}, escalate]


@dataclass(frozen=True)
class _Head:
    """How an Express head is emitted: ``skipped`` nodes become ``Pass`` states; without ``retries``
    every node runs one attempt and a retryable failure goes to the hand-off."""

    skipped: frozenset[str]
    retries: bool


def _has_reserved_key(value: Any) -> bool:
    """Whether any key of ``value`` (nested) ends in ``.$``: the common answer, no, without building a path
    string per key (:func:`_reserved_keys` names them)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if str(key).endswith(".$"):
                    return True
                if isinstance(sub, dict | list):
                    pending.append(sub)
        elif isinstance(item, list):
            pending.extend(sub for sub in item if isinstance(sub, dict | list))
    return False


def _reserved_keys(value: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if str(key).endswith(".$"):
                found.append(f"{where}.{key}")
            found += _reserved_keys(sub, f"{where}.{key}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _reserved_keys(sub, f"{where}[{i}]")
    return found


def _node_document(node: NodeSpec) -> dict[str, Any]:
    doc = node.model_dump(mode="json", exclude_none=True)
    doc.pop("after", None)
    doc.pop("when", None)
    doc["kind"] = node.kind
    if _has_reserved_key(doc):
        bad = _reserved_keys(doc, node.id)
        raise TaskflowError(
            f"node '{node.id}' has keys ending in '.$' ({', '.join(bad)}); Step Functions would "
            "read them as JSONPath references. Rename them",
            code="flow.reserved_key", where=f"flow.nodes[{node.id}]",
            details={"node": node.id, "nodes": [node.id], "keys": bad})
    return doc


def _node_task(node: NodeSpec, arns: FunctionArns, nxt: str | None, top: bool,
               head: _Head | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": "run",
        "node": _node_document(node),
        "workflow.$": "$.workflow",
        "variables.$": "$.variables",
        "retry_count.$": "$$.State.RetryCount",
        "execution_id.$": "$$.Execution.Id",
    }
    if head is not None and not head.retries:
        payload["hand_off"] = True  # a failure the node's policy would retry is handed off (HandOff)
    timeout = _task_timeout(node)
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": f"{node.kind} node '{node.id}'",
        "Resource": LAMBDA_INVOKE_WAIT if node.waits_for_callback else LAMBDA_INVOKE,
        "Parameters": {"FunctionName": arns.for_node(node), "Payload": payload},
        "ResultPath": None,
        "TimeoutSeconds": timeout,
    }
    if node.waits_for_callback:
        payload["task_token.$"] = "$$.Task.Token"
        if node.callback is not None and node.callback.heartbeat is not None:
            heartbeat = max(1, math.ceil(node.callback.heartbeat))
            # rounding up to whole seconds must keep the heartbeat below the timeout
            state["HeartbeatSeconds"] = heartbeat
            state["TimeoutSeconds"] = max(timeout, heartbeat + 1)
    retry = _retry(node) if head is None or head.retries else []
    if retry:
        state["Retry"] = retry
    if top:
        state["Catch"] = _catch(head)
    _link(state, nxt)
    return state


def _skipped_at_match(node: NodeSpec, nxt: str | None) -> dict[str, Any]:
    """An Express head's stand-in for a node that waits: the matcher recorded it SKIPPED (its ``when``
    was false for this event) before the head started."""
    state: dict[str, Any] = {"Type": "Pass", "Comment": f"node '{node.id}' skipped at match time: it waits for "
                             "a person or a callback and its 'when' condition is false for this event",
                             "Result": {"action": SKIPPED_AT_MATCH, "node_id": node.id}, "ResultPath": None}
    _link(state, nxt)
    return state


def _skip_task(node: NodeSpec, arns: FunctionArns, nxt: str | None, top: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": f"node '{node.id}' skipped: its 'when' condition is false",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": arns.workflow,
                       "Payload": {"action": "skip", "node_id": node.id, "workflow.$": "$.workflow"}},
        "ResultPath": None,
        "Retry": _workflow_retry(),
    }
    if top:
        state["Catch"] = _catch()
    _link(state, nxt)
    return state


def _link(state: dict[str, Any], nxt: str | None) -> None:
    if nxt is None:
        state["End"] = True
    else:
        state["Next"] = nxt


class _Emitter:
    def __init__(self, dag: Dag, arns: FunctionArns, head: _Head | None = None) -> None:
        self.dag = dag
        self.arns = arns
        self.head = head
        self.names: set[str] = {ESCALATE, ESCALATED, ESCALATION_FAILED, COMPLETE, HANDOFF, HANDED_OFF}
        self._ids: dict[int, list[str]] = {}  # id(tree) -> its node ids (trees live for one compile)

    def _tree_nodes(self, tree: SpTree) -> list[str]:
        """``tree_nodes`` memoised per subtree: emission asks for them at every level."""
        found = self._ids.get(id(tree))
        if found is None:
            if isinstance(tree, Leaf):
                found = [tree.node]
            else:
                parts = tree.parts if isinstance(tree, Seq) else tree.branches
                found = [n for part in parts for n in self._tree_nodes(part)]
            self._ids[id(tree)] = found
        return found

    def _unique(self, name: str) -> str:
        base = name if len(name) <= limits.MAX_STATE_NAME else name[: limits.MAX_STATE_NAME - 3] + "..."
        candidate, i = base, 2
        while candidate in self.names:
            suffix = f" #{i}"
            candidate = base[: limits.MAX_STATE_NAME - len(suffix)] + suffix
            i += 1
        self.names.add(candidate)
        return candidate

    def _label(self, tree: SpTree) -> str:
        ids = self._tree_nodes(tree)
        return ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"

    def emit(self, tree: SpTree, nxt: str | None, states: dict[str, Any], top: bool) -> str:
        """Add the states of ``tree`` to ``states``, continuing at ``nxt`` (None: end of the
        branch); returns the entry state's name."""
        if isinstance(tree, Leaf):
            node = self.dag.nodes[tree.node]
            if self.head is not None and node.id in self.head.skipped:
                states[f"{node.id}.skipped"] = _skipped_at_match(node, nxt)
                return f"{node.id}.skipped"
            states[node.id] = _node_task(node, self.arns, nxt, top, self.head)
            if node.when is None:
                return node.id
            skipped, choice = f"{node.id}.skipped", f"{node.id}.when"
            states[skipped] = _skip_task(node, self.arns, nxt, top)
            states[choice] = {
                "Type": "Choice",
                "Comment": f"run '{node.id}' only when its condition held at match time",
                "Choices": [{"Variable": _when_path(node.id), "BooleanEquals": True, "Next": node.id}],
                "Default": skipped,
            }
            return choice
        if isinstance(tree, Seq):
            entry = nxt
            for part in reversed(tree.parts):
                entry = self.emit(part, entry, states, top)
            assert entry is not None
            return entry
        name = self._unique("parallel: " + " + ".join(self._label(b) for b in tree.branches))
        branches = []
        for branch in tree.branches:
            sub: dict[str, Any] = {}
            start = self.emit(branch, None, sub, top=False)
            branches.append({"StartAt": start, "States": sub})
        inside = set(self._tree_nodes(tree))
        before = sorted({d for n in inside for d in self.dag.deps[n] if d not in inside})
        state: dict[str, Any] = {
            "Type": "Parallel",
            "Comment": ("runs after " + ", ".join(before)) if before else "runs at the start",
            "Branches": branches,
            "ResultPath": None,
        }
        if top:
            state["Catch"] = _catch(self.head)
        _link(state, nxt)
        states[name] = state
        return name


# ------------------------------------------------------------------------------------ compile


def _choose_type(strategy: FlowSource, dag: Dag, tree: SpTree) -> tuple[Literal["STANDARD", "EXPRESS"], str, float]:
    flow = strategy.flow
    waiting = [n for n in dag.order if dag.nodes[n].waits_for_callback]
    worst, path = _critical(tree, dag)
    limit = limits.EXPRESS_MAX_SECONDS
    if flow.mode == "express":
        if waiting:
            raise TaskflowError(
                f"mode: express cannot wait for callbacks, but node(s) {', '.join(waiting)} wait for a "
                "task token (callback or manual_review); use mode: standard or auto",
                code="flow.express_with_callback", where="flow.mode",
                details={"node": waiting[0], "nodes": waiting})
        if flow.timeout > limit:
            raise TaskflowError(
                f"mode: express runs at most {limit} s, but flow.timeout is {_fmt_seconds(flow.timeout)}; "
                "lower the timeout or use mode: standard or auto",
                code="flow.express_timeout", where="flow.timeout",
                details={"limit": limit, "actual": flow.timeout})
        return "EXPRESS", "mode: express was requested explicitly.", worst
    if flow.mode == "standard":
        return "STANDARD", "mode: standard was requested explicitly.", worst
    if waiting:
        kinds = "a manual review" if dag.nodes[waiting[0]].manual_review else "a callback"
        return ("STANDARD", f"STANDARD because node '{waiting[0]}' waits for {kinds} (task token), "
                "which Express workflows cannot do.", worst)
    if flow.timeout > limit:
        return ("STANDARD", f"STANDARD because flow.timeout ({_fmt_seconds(flow.timeout)}) exceeds the "
                f"{limit} s Express limit.", worst)
    if worst > limit:
        return ("STANDARD", f"STANDARD because the worst-case duration ({_fmt_seconds(worst)} along "
                f"{' → '.join(path)}) exceeds the {limit} s Express limit.", worst)
    return ("EXPRESS", f"EXPRESS because no node waits for a callback and the worst-case duration "
            f"({_fmt_seconds(worst)} along {' → '.join(path)}) and flow.timeout "
            f"({_fmt_seconds(flow.timeout)}) fit the {limit} s Express limit.", worst)


def _state_machine_name(strategy_id: str, version: int, hash8: str) -> str:
    prefix = f"agent-{strategy_id}-v{version}"
    room = 80 - len(hash8) - 1
    if len(prefix) > room:
        prefix = prefix[:room].rstrip("-")
    return f"{prefix}-{hash8}"


def compile_flow(strategy: FlowSource, arns: FunctionArns) -> CompiledFlow:
    """Compile ``strategy.flow``; raises :class:`TaskflowError` (``flow.*``, ``limit.*``)."""
    flow = strategy.flow
    where = f"strategy {strategy.key}"
    dag = build_dag(flow)
    # cheap lower bound first, so a huge flow fails before the decomposition runs
    minimum = len(dag.nodes) + 2 * sum(1 for n in dag.nodes.values() if n.when is not None) + 4
    limits.check_state_count(minimum, where=where)

    tree = series_parallel(dag)
    kind, reason, worst = _choose_type(strategy, dag, tree)
    return _assemble(strategy, arns, dag, tree, kind, reason, worst, flow.timeout)


def compile_express_head(strategy: FlowSource, arns: FunctionArns, full: CompiledFlow) -> CompiledFlow | None:
    """The Express head of a flow that ``full`` runs Standard, for the events that await nobody.

    A flow is Standard when a node waits for a person or a callback, or when its worst case (every
    attempt into its timeout) exceeds Express's 5 minutes. When every node that waits has a ``when``
    condition (evaluated at match time), an event for which all of them are false awaits nobody: it
    runs on this head, where those nodes are ``Pass`` states (the matcher records them SKIPPED). If
    the head's worst case with the nodes' retries fits Express, it is the whole run. Otherwise every
    node gets one attempt, and a failure its policy would retry hands the workflow off to ``full``
    (``Continue in Standard``: the same execution input, on the Standard machine, where what
    succeeded is reused and the retries take as long as they need).

    None when no head applies (mode is not auto, ``full`` is Express already, a node waits
    unconditionally, or even one attempt per node does not fit)."""
    flow = strategy.flow
    if flow.mode != "auto" or full.type != "STANDARD":
        return None
    dag = build_dag(flow)
    waiting = [n for n in dag.order if dag.nodes[n].waits_for_callback]
    if not waiting or any(dag.nodes[n].when is None for n in waiting):
        return None
    tree = series_parallel(dag)
    skipped = frozenset(waiting)
    limit = limits.EXPRESS_MAX_SECONDS
    worst, path = _critical(tree, dag, skipped)
    names = ", ".join(f"'{n}'" for n in waiting)
    one = len(waiting) == 1
    why = (f"EXPRESS head: {'node' if one else 'nodes'} {names}, waiting for a person or a callback, "
           f"{'is' if one else 'are'} skipped for this event ({'its' if one else 'their'} when condition is false "
           "at match time)")
    if worst <= limit - HANDOFF_RESERVE_SECONDS:
        head = _Head(skipped, retries=True)
        reason = (f"{why}; the worst-case duration without it ({_fmt_seconds(worst)} along "
                  f"{' → '.join(path)}) fits the {limit} s Express limit.")
    else:
        once, once_path = _critical(tree, dag, skipped, attempts=1)
        if once > limit - HANDOFF_RESERVE_SECONDS:
            return None
        head = _Head(skipped, retries=False)
        worst = once
        reason = (f"{why}; one attempt per node ({_fmt_seconds(once)} along {' → '.join(once_path)}) fits "
                  f"the {limit} s Express limit, and a failure that needs a retry continues in the Standard "
                  f"machine {full.state_machine_name}.")
    return _assemble(strategy, arns, dag, tree, "EXPRESS", reason, worst, min(flow.timeout, limit), head,
                     continuation=full.state_machine_name)


def flow_for_event(full: CompiledFlow, head: CompiledFlow | None, runs: dict[str, bool]) -> CompiledFlow:
    """The flow an event runs: the Express head when every node it leaves out is skipped for the event
    (``runs``: node id → its ``when`` holds), else the full flow. The matcher and ``strategy test`` use it."""
    if head is not None and not any(runs.get(n, True) for n in head.skipped_nodes):
        return head
    return full


def _assemble(strategy: FlowSource, arns: FunctionArns, dag: Dag, tree: SpTree, kind: Literal["STANDARD", "EXPRESS"],
              reason: str, worst: float, timeout: float, head: _Head | None = None,
              continuation: str = "") -> CompiledFlow:
    flow = strategy.flow
    where = f"strategy {strategy.key}"
    emitter = _Emitter(dag, arns, head)
    states: dict[str, Any] = {}
    start = emitter.emit(tree, COMPLETE, states, top=True)
    escalation = flow.on_failure.escalate.model_dump(mode="json")
    states[COMPLETE] = {
        "Type": "Task",
        "Comment": "all nodes succeeded or were skipped: record the workflow as completed",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": arns.workflow,
                       "Payload": {"action": "complete", "workflow.$": "$.workflow"}},
        "ResultPath": None,
        "Retry": _workflow_retry(),
        "Catch": _catch(),
        "End": True,
    }
    states[ESCALATE] = {
        "Type": "Task",
        "Comment": "a node failed for good: open a manual review work order and notify",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": arns.workflow,
                       "Payload": {"action": "escalate", "workflow.$": "$.workflow",
                                   "failure.$": FAILURE_PATH, "escalation": escalation}},
        "ResultPath": None,
        "Retry": _workflow_retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.escalation_failure",
                   "Next": ESCALATION_FAILED}],
        "Next": ESCALATED,
    }
    states[ESCALATED] = {
        "Type": "Fail",
        "Error": "Agent.WorkflowEscalated",
        "Cause": (f"A node of strategy {strategy.key} failed after its retries; the workflow was "
                  f"escalated to the '{escalation['queue']}' manual review queue."),
    }
    states[ESCALATION_FAILED] = {
        "Type": "Fail",
        "Error": "Agent.EscalationFailed",
        "Cause": (f"A node of strategy {strategy.key} failed and the escalation itself failed after "
                  "its retries; the workflow needs operator attention."),
    }
    if head is not None and not head.retries:
        states[HANDOFF] = {
            "Type": "Task",
            "Comment": "a node needs a retry this Express execution has no time for: start the Standard "
                       f"machine {continuation} with the same input (what succeeded is reused there)",
            "Resource": LAMBDA_INVOKE,
            "Parameters": {"FunctionName": arns.workflow,
                           "Payload": {"action": "hand_off", "workflow.$": "$.workflow",
                                       "variables.$": "$.variables", "when.$": "$.when",
                                       "failure.$": FAILURE_PATH, "continuation.$": "$.continuation",
                                       "execution_id.$": "$$.Execution.Id"}},
            "ResultPath": None,
            "Retry": _workflow_retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.escalation_failure", "Next": ESCALATE}],
            "Next": HANDED_OFF,
        }
        states[HANDED_OFF] = {"Type": "Succeed", "Comment": f"the workflow continues in {continuation}"}
    variant = " head" if head is not None else ""
    definition: dict[str, Any] = {
        "Comment": f"PowerX Agent strategy {strategy.id} v{strategy.version} ({kind.lower()}{variant}; "
                   "generated by powerx_agent.taskflow.asl, do not edit)",
        "StartAt": start,
        "TimeoutSeconds": max(1, math.ceil(timeout)),
        "States": states,
    }
    state_count = limits.check_state_count(limits.count_states(definition), where=where)
    definition_json = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    size = limits.check_definition_size(definition_json, where=where)
    events = limits.check_history_events(limits.estimate_history_events(definition), where=where)
    sha = hashlib.sha256(definition_json.encode("utf-8")).hexdigest()
    return CompiledFlow(
        definition=definition,
        definition_json=definition_json,
        sha256=sha,
        hash8=sha[:8],
        state_machine_name=_state_machine_name(strategy.id, strategy.version, sha[:8]),
        type=kind,
        type_reason=reason,
        when_keys={n: when_key(n) for n in dag.order if dag.nodes[n].when is not None},
        worst_case_seconds=worst,
        history_events=events,
        state_count=state_count,
        definition_bytes=size,
        strategy_id=strategy.id,
        strategy_version=strategy.version,
        skipped_nodes=tuple(sorted(head.skipped)) if head is not None else (),
        continuation=continuation,
    )


# ------------------------------------------------------------------------------ flow templates

_TEMPLATE_FIELDS = ("plugin", "notify", "review", "workflow")
TEMPLATE_ARNS = FunctionArns(*(f"arn:aws:lambda:powerx-template:000000000000:function:powerx-template-{name}"
                               for name in _TEMPLATE_FIELDS))
"""Placeholder function ARNs a flow template is compiled with (replaced by the deployment's)."""


@dataclass(frozen=True)
class FlowTemplate:
    """A flow compiled once with :data:`TEMPLATE_ARNS`, stored in a library artifact; the matcher
    gives it the deployment's ARNs. :meth:`instantiate` returns exactly what ``compile_flow(strategy,
    arns)`` returns (same definition bytes, hash and state machine name) without compiling again."""

    strategy_id: str
    strategy_version: int
    definition_json: str
    type: Literal["STANDARD", "EXPRESS"]
    type_reason: str
    when_keys: dict[str, str]
    worst_case_seconds: float
    history_events: int
    state_count: int

    def to_dict(self) -> dict[str, Any]:
        return {"definition_json": self.definition_json, "type": self.type, "type_reason": self.type_reason,
                "when_keys": self.when_keys, "worst_case_seconds": self.worst_case_seconds,
                "history_events": self.history_events, "state_count": self.state_count}

    @classmethod
    def from_dict(cls, strategy_id: str, strategy_version: int, data: dict[str, Any]) -> FlowTemplate:
        if data.get("type") not in ("STANDARD", "EXPRESS") or not isinstance(data.get("definition_json"), str):
            raise TaskflowError("not a flow template", code="flow.template_invalid")
        return cls(strategy_id, strategy_version, data["definition_json"], data["type"], str(data["type_reason"]),
                   {str(k): str(v) for k, v in dict(data["when_keys"]).items()},
                   float(data["worst_case_seconds"]), int(data["history_events"]), int(data["state_count"]))

    def instantiate(self, arns: FunctionArns) -> CompiledFlow:
        text = self.definition_json
        for name in _TEMPLATE_FIELDS:
            text = text.replace(json.dumps(getattr(TEMPLATE_ARNS, name)),
                                json.dumps(getattr(arns, name), ensure_ascii=False))
        where = f"strategy {self.strategy_id}@v{self.strategy_version}"
        size = limits.check_definition_size(text, where=where)
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return CompiledFlow(
            definition=json.loads(text), definition_json=text, sha256=sha, hash8=sha[:8],
            state_machine_name=_state_machine_name(self.strategy_id, self.strategy_version, sha[:8]),
            type=self.type, type_reason=self.type_reason, when_keys=dict(self.when_keys),
            worst_case_seconds=self.worst_case_seconds, history_events=self.history_events,
            state_count=self.state_count, definition_bytes=size, strategy_id=self.strategy_id,
            strategy_version=self.strategy_version)


def flow_template(strategy: FlowSource, model_json: str) -> FlowTemplate | None:
    """The strategy's flow as a template, or None when its own text (``model_json``) holds a
    placeholder ARN (substituting would then change the strategy's content: compile it instead)."""
    if any(getattr(TEMPLATE_ARNS, name) in model_json for name in _TEMPLATE_FIELDS):
        return None
    flow = compile_flow(strategy, TEMPLATE_ARNS)
    return FlowTemplate(strategy.id, strategy.version, flow.definition_json, flow.type, flow.type_reason,
                        flow.when_keys, flow.worst_case_seconds, flow.history_events, flow.state_count)
