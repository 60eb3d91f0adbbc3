"""A tripwire between the code and the grants: every AWS operation the Lambda code can call is granted.

The per-function policies are hand-traced (test_least_privilege.py, docs/architecture.md). This test
catches the drift that hand tracing misses when the code moves on: it parses every module a handler
imports (transitively, inside ``powerx_agent``; the embedded runtime and the CLI are not shipped),
finds every call named like a boto3 operation of the services the functions use, and requires the
IAM action to be granted to some function role in the synthesized template, unless it is listed
below as called only from operator paths (CLI, repair, tests) with the reason.

A new call (e.g. ``publish_state_machine_version`` in the matcher) fails here with the file and
line, so the grant is added (infra/constants.py, test_least_privilege.py, docs) before a deploy
would fail with AccessDenied.
"""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
from botocore import xform_name

from infra.components.functions import PACKAGE_EXCLUDE
from powerx_agent import spec

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "powerx_agent"
SERVICES = {"dynamodb": "dynamodb", "sqs": "sqs", "stepfunctions": "states", "events": "events",
            "secretsmanager": "secretsmanager", "logs": "logs", "appconfigdata": "appconfig"}
NOT_SHIPPED = PACKAGE_EXCLUDE
PAGINATION_HELPERS = ("pages", "all_items")  # adapters/dynamo.py: the DynamoDB operation is their 2nd argument

# (module, IAM action): why a Lambda function never makes this call although its module is shipped
OPERATOR_ONLY: dict[tuple[str, str], str] = {
    ("adapters/audit_store.py", "dynamodb:Scan"): "AuditStore.scan_all: audit verify/repair (CLI)",
    # audit_store.py's StreamCursor (FLAGS/AUDIT_CURSOR in agent_strategies) also gets, updates and
    # deletes from the audit_stream Lambda; those grants are on agent_strategies, not agent_audit
    ("adapters/audit_store.py", "dynamodb:DeleteItem"): "AuditStore.delete (tests, repair drills); the "
                                                        "stream cursor's delete is granted on agent_strategies",
    ("adapters/audit_store.py", "dynamodb:GetItem"): "audit repair/verify read paths (CLI); the stream cursor's "
                                                     "get is granted on agent_strategies",
    ("adapters/audit_store.py", "dynamodb:UpdateItem"): "audit repair (CLI); the stream cursor's update is "
                                                        "granted on agent_strategies",
    ("adapters/events_store.py", "dynamodb:Scan"): "EventsStore.scan: CLI listings",
    ("adapters/workflows_store.py", "dynamodb:Scan"): "WorkflowsStore._scan: workflow list without tenant (CLI)",
    ("adapters/metrics.py", "logs:DescribeLogGroups"): "read_emf_totals: CLI metrics",
    ("adapters/strategies_store.py", "dynamodb:PutItem"): "publish/approve/rollback/put_flags: CLI",
    ("adapters/strategies_store.py", "dynamodb:Query"): "StrategiesStore.versions: CLI strategy list/diff",
    ("adapters/strategies_store.py", "dynamodb:DeleteItem"): "StrategiesStore.unpublish (undoing a publish): CLI",
    ("adapters/strategies_store.py", "dynamodb:UpdateItem"): "StrategiesStore.attach_artifact/mark_canary: CLI",
    # adapters/dynamo.py batch_get, used by StrategiesStore.version_items (building a library artifact: CLI
    # approve/rollback/library rebuild) and WorkflowsStore.list_workflows by tenant (reading the METAs the keys-only
    # by_tenant index names: CLI workflow list / stop-tenant and the console; no handler lists workflows)
    ("adapters/dynamo.py", "dynamodb:BatchGetItem"): "batch_get: CLI/console (strategy library builds, workflow list)",
    ("adapters/strategies_store.py", "dynamodb:BatchWriteItem"): "StrategiesStore.put_artifact/delete_artifact: "
                                                                 "CLI approve/rollback/library rebuild",
    ("adapters/strategies_store.py", "dynamodb:TransactWriteItems"): "no such IAM action: a transaction is "
                                                                     "authorized by its items' actions (approve/"
                                                                     "rollback/restore/publish_new: CLI; end_canary: "
                                                                     "UpdateItem, granted)",
    ("adapters/tenants_store.py", "dynamodb:PutItem"): "TenantsStore.put: seeding (local runtime / operators)",
    ("adapters/tenants_store.py", "dynamodb:Scan"): "TenantsStore.scan: tenants apply/list (CLI)",
    ("adapters/tenants_store.py", "dynamodb:TransactWriteItems"): "TenantsStore.transact: tenants apply/disable (CLI)",
    # the Step Functions, EventBridge and SQS ports serve the operator wing too (ops/: CLI only)
    **{("adapters/state_machines.py", f"states:{op}"): "StateMachines: workflow show/retry/stop, repair, verify (CLI)"
       for op in ("DescribeExecution", "GetExecutionHistory", "StopExecution", "ListStateMachines",
                  "ListExecutions")},
    **{("adapters/bus.py", f"events:{op}"): "Bus.replay / replay_state: replay --archive (CLI)"
       for op in ("DescribeArchive", "DescribeEventBus", "DescribeRule", "StartReplay", "DescribeReplay")},
    ("adapters/queues.py", "sqs:GetQueueUrl"): "Queues.url: the CLI finds the embedded runtime's queues",
    ("adapters/secrets.py", "secretsmanager:PutSecretValue"): "SecretsCache.put_json: powerx-agent keys (CLI): "
                                                              "callers and rotation",
}


def _operations() -> dict[str, set[str]]:
    session = botocore.session.get_session()
    ops: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for op in session.get_service_model(service).operation_names:
            ops.setdefault(xform_name(op), set()).add(f"{prefix}:{op}")
    return ops


def _module_path(name: str) -> Path | None:
    rel = name.removeprefix("powerx_agent").lstrip(".").replace(".", "/")
    for candidate in (PACKAGE / f"{rel}.py", PACKAGE / rel / "__init__.py"):
        if rel and candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("powerx_agent"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("powerx_agent"))
    return names


def modules_reached_by_handlers() -> set[Path]:
    """Every module of the package a handler imports, transitively, function-local imports included."""
    todo = [PACKAGE / (fn.handler.rsplit(".", 1)[0].removeprefix("powerx_agent.").replace(".", "/") + ".py")
            for fn in spec.FUNCTIONS]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [p for p in (_module_path(n) for n in _imports(path)) if p]
    return seen


def shipped_modules_reached_by_handlers() -> set[Path]:
    return {p for p in modules_reached_by_handlers() if p.relative_to(PACKAGE).parts[0] not in NOT_SHIPPED}


def called_operations() -> dict[tuple[str, str], tuple[set[str], list[int]]]:
    """(module, method) -> (the IAM actions the method name can mean, lines). ``tag_resource`` is a method
    of several clients: any one of its actions being granted is enough (the call goes to one service)."""
    ops = _operations()
    found: dict[tuple[str, str], tuple[set[str], list[int]]] = {}
    for path in shipped_modules_reached_by_handlers():
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            # adapters/dynamo.pages/all_items(ddb, "query" | "scan", ...) name the operation as a string
            helper = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if helper in PAGINATION_HELPERS and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                method = node.args[1].value
            if method in ops:
                found.setdefault((rel, method), (ops[method], []))[1].append(node.lineno)
    return found


def granted_actions(synth) -> set[str]:
    actions: set[str] = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update(listed if isinstance(listed, list) else [listed])
    return actions


def test_given_the_shipped_code_when_scanned_then_the_handlers_reach_the_modules_that_call_aws():
    reached = {p.relative_to(PACKAGE).as_posix() for p in shipped_modules_reached_by_handlers()}
    assert {"match/service.py", "ingest/service.py", "nodes/runner.py", "nodes/callbacks.py",
            "adapters/audit_store.py", "adapters/workflows_store.py"} <= reached


def test_given_the_packages_left_out_of_the_asset_when_the_handlers_imports_are_followed_then_none_is_reached():
    # local/, cli/ and ops/ are not in the code asset: a handler that imported them would fail on AWS
    reached = {p.relative_to(PACKAGE).as_posix() for p in modules_reached_by_handlers()}
    assert not sorted(r for r in reached if r.split("/")[0] in NOT_SHIPPED)


def test_given_every_aws_call_in_the_shipped_code_when_compared_then_each_action_is_granted_or_operator_only(synth):
    granted = granted_actions(synth)
    missing = {
        f"{module}:{sorted(lines)} calls {method} ({' | '.join(sorted(actions))})"
        for (module, method), (actions, lines) in called_operations().items()
        if not actions & granted and not any((module, a) in OPERATOR_ONLY for a in actions)
    }
    assert not missing, (
        "AWS calls no function role is allowed to make (add the grant in infra/constants.py + "
        "test_least_privilege.py + docs/architecture.md, or list the call in OPERATOR_ONLY with the reason): "
        + "; ".join(sorted(missing))
    )


def test_given_the_operator_only_list_when_compared_with_the_code_then_every_entry_still_exists():
    called = {(module, action) for (module, _m), (actions, _l) in called_operations().items() for action in actions}
    stale = [entry for entry in OPERATOR_ONLY if entry not in called]
    assert not stale, f"OPERATOR_ONLY entries no longer in the code (remove them): {stale}"


# the operator-only reads behind adapters/dynamo.py batch_get: a handler calling one of these needs the grant
# (BatchGetItem on the table; for list_workflows by tenant also Query on agent_workflows/index/by_tenant)
BATCH_GET_CALLERS = ("list_workflows", "version_items")


def test_given_the_shipped_code_when_scanned_then_no_handler_lists_workflows_or_reads_strategy_versions_in_batch():
    found = sorted(
        f"{path.relative_to(PACKAGE).as_posix()}:{node.lineno} calls {node.func.attr}"
        for path in shipped_modules_reached_by_handlers() if path.relative_to(PACKAGE).parts[0] != "adapters"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in BATCH_GET_CALLERS
    )
    assert not found, "grant BatchGetItem (and the by_tenant Query) to the function, then drop the OPERATOR_ONLY entry: " \
        + "; ".join(found)
