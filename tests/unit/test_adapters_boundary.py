"""adapters/ is the only place that calls AWS (boto3) or HTTP (requests), and the only place that
reads a botocore error code.

Read from the source (every module of the package, function-local imports and calls included):

- only ``adapters/`` imports boto3, botocore or requests (``local/``, the embedded runtime that
  plays AWS's part and deploys its resources, ``loadtest/``, its load harness, and ``testing/``, the
  fakes that answer like AWS, are the other places, and are never shipped);
- no module outside ``adapters/``, ``local/``, ``loadtest/`` and ``testing/`` calls a method named like an operation of an AWS
  service the project uses (``start_execution``, ``send_message``, ``put_events``, ...);
- the error-code helper of ``adapters/aws.py`` is used in ``adapters/`` only, and no module
  outside reads ``response["Error"]["Code"]`` itself;
- logic (the domain, the steps, escalation, the operator wing) never builds a client: only the
  composition roots (``deps.py``, ``handlers/``, ``cli/``) do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
from botocore import xform_name

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "powerx_agent"
AWS_LIBRARIES = ("boto3", "botocore", "requests")
SERVICES = ("dynamodb", "dynamodbstreams", "sqs", "stepfunctions", "events", "secretsmanager", "logs",
            "appconfig", "appconfigdata", "cloudformation", "lambda", "apigateway", "sts", "cloudwatch")
ADAPTERS, RUNTIME = "adapters", ("local", "loadtest", "testing")  # the embedded runtime, its load harness, the fakes
COMPOSITION_ROOTS = ("deps.py", "handlers", "cli")


def _modules() -> dict[str, ast.AST]:
    return {p.relative_to(PACKAGE).as_posix(): ast.parse(p.read_text(), str(p)) for p in PACKAGE.rglob("*.py")}


def _top(rel: str) -> str:
    return rel.split("/")[0]


def _is_port_call(call: ast.Call) -> bool:
    """``deps.<port>.method(...)`` / ``self.deps.<port>.method(...)``: a call of one of our ports (whose
    method may share a name with an AWS operation, e.g. ``deps.events.scan()``), not of a client."""
    func = call.func
    owner = func.value if isinstance(func, ast.Attribute) else None
    base = owner.value if isinstance(owner, ast.Attribute) else None
    return (isinstance(base, ast.Name) and base.id == "deps") or (
        isinstance(base, ast.Attribute) and base.attr == "deps")


def _key(node: ast.AST | None) -> object:
    """The constant key of ``x["key"]`` or ``x.get("key", ...)``."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
            and node.args and isinstance(node.args[0], ast.Constant):
        return node.args[0].value
    return None


def _inner(node: ast.AST) -> ast.AST | None:
    inner = node.value if isinstance(node, ast.Subscript) else getattr(node.func, "value", None)
    while isinstance(inner, ast.BoolOp):  # (x.get("Error") or {}).get("Code")
        inner = inner.values[0]
    return inner


def _operation_names() -> set[str]:
    session = botocore.session.get_session()
    return {xform_name(op) for s in SERVICES for op in session.get_service_model(s).operation_names}


def test_given_every_module_when_its_imports_are_read_then_only_adapters_and_the_runtime_import_boto3_or_requests():
    found = []
    for rel, tree in _modules().items():
        if _top(rel) in (ADAPTERS, *RUNTIME):
            continue
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{rel}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in AWS_LIBRARIES]
    assert found == []


def test_given_every_module_when_its_calls_are_read_then_no_aws_operation_is_called_outside_adapters():
    operations = _operation_names()
    found = []
    for rel, tree in _modules().items():
        if _top(rel) in (ADAPTERS, *RUNTIME):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in operations \
                    and not _is_port_call(node):
                found.append(f"{rel}:{node.lineno} calls {node.func.attr}")
    assert found == []


def test_given_every_module_when_read_then_botocore_error_codes_are_read_in_adapters_only():
    found = []
    for rel, tree in _modules().items():
        if _top(rel) in (ADAPTERS, *RUNTIME):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "error_code":
                found.append(f"{rel}:{node.lineno} uses error_code")
            if isinstance(node, ast.ImportFrom) and node.module == "powerx_agent.adapters.aws":
                found += [f"{rel}:{node.lineno} imports {a.name}" for a in node.names if a.name == "error_code"]
            if _key(node) == "Code" and _key(_inner(node)) == "Error":  # response["Error"]["Code"], .get(...)
                found.append(f"{rel}:{node.lineno} reads a botocore error code")
    assert found == []


def test_given_the_logic_packages_when_read_then_none_builds_a_client():
    found = []
    for rel, tree in _modules().items():
        if _top(rel) in (ADAPTERS, *RUNTIME) or rel in COMPOSITION_ROOTS or _top(rel) in COMPOSITION_ROOTS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
                found.append(f"{rel}:{node.lineno} builds a client")
    assert found == []


def test_given_a_module_that_calls_aws_when_scanned_then_the_scan_finds_it(tmp_path):
    # the scans above must be able to fail: a planted call of each kind is found
    tree = ast.parse("import boto3\nsqs = deps.client('sqs')\nsqs.send_message(QueueUrl='q', MessageBody='b')\n")
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "send_message" in _operation_names() & set(calls) and "client" in calls
    reads = [n for n in ast.walk(ast.parse("exc.response['Error']['Code']\n(r.get('Error') or {}).get('Code')\n"))
             if _key(n) == "Code"]
    assert len(reads) == 2 and all(_key(_inner(n)) == "Error" for n in reads)
    port_call, client_call = (n for n in ast.walk(ast.parse("deps.events.scan()\nsqs.scan()\n"))
                              if isinstance(n, ast.Call))
    assert _is_port_call(port_call) and not _is_port_call(client_call)
    assert any(isinstance(n, ast.Import) and n.names[0].name == "boto3" for n in ast.walk(tree))
