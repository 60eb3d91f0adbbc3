"""The Lambda dependency layer ships what the functions import, pinned, and docs/deploy.md lists it.

- what the handlers reach (layers/build.py ``handler_imports``: every third-party module reachable
  from a handler module of the spec) is exactly covered by the layer's declared dependencies and their
  lock; nothing the console script alone uses (typer, rich, grandalf, ...) is in the lock;
- the lock is closed: every pinned distribution's requirements (for CPython 3.11 on Linux arm64) are
  pinned too, at versions they accept;
- the built layer holds exactly the lock, and the table in docs/deploy.md is its manifest.

The build needs the package index the first time (like tests/infrastructure/test_cdk_cli_synth.py);
afterwards it is skipped by its stamp.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("powerx_layer_build", REPO_ROOT / "layers" / "build.py")
layer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layer)

LAMBDA_ENV = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0",
              "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
              "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}


def _distribution_of(module: str) -> str:
    (dist, *_) = importlib.metadata.packages_distributions()[module]
    return layer.canonical(dist)


def test_given_the_handlers_when_their_imports_are_followed_then_the_layer_declares_exactly_what_they_use():
    imported = {_distribution_of(m) for m in layer.handler_imports()}
    declared = {layer.requirement_name(d) for d in layer.layer_dependencies()}
    pins = layer.read_lock()
    assert imported <= set(pins), f"imported by a function but not in the layer: {sorted(imported - set(pins))}"
    assert declared <= imported, f"declared for the layer but imported by no function: {sorted(declared - imported)}"


def test_given_the_console_script_packages_when_the_lock_is_read_then_none_of_them_is_in_the_layer():
    declared = {layer.requirement_name(d) for d in layer.layer_dependencies()}
    console_only = {layer.requirement_name(d) for d in layer.project_dependencies()} - declared
    assert console_only >= {"typer", "rich", "grandalf"}
    # and what they pull in (click, pygments, markdown-it-py, pyparsing, ...), from the dev environment
    pulled = set()
    for name in console_only:
        for requirement in importlib.metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({**LAMBDA_ENV, "extra": ""}):
                pulled.add(layer.canonical(parsed.name))
    pins = set(layer.read_lock())
    assert not (console_only & pins)
    shared = pulled & pins  # e.g. typing-extensions: fine when a function dependency needs it as well
    assert not (pulled - shared) & pins


def test_given_the_layer_dependencies_when_compared_then_they_are_the_project_dependencies_verbatim():
    project = {layer.requirement_name(d): d for d in layer.project_dependencies()}
    for dependency in layer.layer_dependencies():
        assert project[layer.requirement_name(dependency)] == dependency


@pytest.fixture(scope="module")
def built() -> Path:
    try:
        return layer.build() / "python"
    except Exception as exc:  # noqa: BLE001 - the same failure the CLI synth test reports
        pytest.fail(f"layers/build.py could not build the layer (is the package index reachable?): {exc}")


def test_given_the_built_layer_when_listed_then_it_holds_exactly_the_lock_and_nothing_unowned(built):
    manifest = json.loads((built.parent / "manifest.json").read_text())
    assert {d["name"]: d["version"] for d in manifest["distributions"]} == layer.read_lock()
    assert manifest["files_without_distribution"] == 0
    assert not list(built.glob("typer*")) and not list(built.glob("rich*")) and not list(built.glob("grandalf*"))
    assert manifest["unzipped_bytes"] < 250 * 1024 * 1024  # Lambda: function + layers, unzipped


def test_given_the_lock_when_each_pin_requirements_are_read_then_they_are_pinned_at_accepted_versions(built):
    pins = layer.read_lock()
    for info in built.glob("*.dist-info"):
        metadata = importlib.metadata.PathDistribution(info).metadata
        for requirement in metadata.get_all("Requires-Dist") or []:
            parsed = Requirement(requirement)
            if parsed.marker is not None and not parsed.marker.evaluate({**LAMBDA_ENV, "extra": ""}):
                continue
            name = layer.canonical(parsed.name)
            assert name in pins, f"{metadata['Name']} needs {requirement}, not in the lock"
            assert parsed.specifier.contains(pins[name], prereleases=True), (metadata["Name"], requirement)


def test_given_docs_deploy_when_read_then_the_layer_table_is_the_built_layers_manifest(built):
    text = (REPO_ROOT / "docs" / "deploy.md").read_text()
    found = re.search(r"<!-- layer-manifest -->\n(.*?)\n<!-- /layer-manifest -->", text, flags=re.S)
    assert found, "docs/deploy.md has no layer manifest section"
    expected = layer.manifest_markdown(json.loads((built.parent / "manifest.json").read_text()))
    assert found.group(1).strip() == expected, "regenerate it with `python layers/build.py --manifest`"


_IMPORTED_AT_RUN_TIME = """
import importlib, json, sys
before = set(sys.modules)
from powerx_agent import spec, telemetry
for function in spec.FUNCTIONS:
    importlib.import_module(function.handler.rsplit(".", 1)[0])
print(json.dumps({"tracing": not telemetry.tracer().disabled,
                  "modules": sorted({m.split(".")[0] for m in set(sys.modules) - before})}))
"""


# loaded only when the developer's environment happens to have them (an import under ``try/except ImportError``);
# the layer does without them
OPTIONAL_AT_RUN_TIME = {
    "pysocks": "requests loads urllib3.contrib.socks when PySocks is installed (selenium, a test extra, installs "
               "it); without it requests runs, with no SOCKS proxy support, which no function uses",
}


def test_given_the_handlers_imported_as_in_lambda_when_tracing_is_on_then_every_module_they_load_is_in_the_lock():
    # what the AST walk cannot see: what a library imports for itself at run time (the Tracer loads the
    # X-Ray SDK and patches boto3 and requests). Lambda's environment turns the Tracer on.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env.update({"LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "eu-west-1",
                "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
    out = subprocess.run([sys.executable, "-c", _IMPORTED_AT_RUN_TIME], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["tracing"] is True
    owners = importlib.metadata.packages_distributions()
    distributions = {layer.canonical(d) for m in loaded["modules"] for d in owners.get(m, [])} - {"powerx-agent"}
    assert "aws-xray-sdk" in distributions
    missing = distributions - set(layer.read_lock()) - set(OPTIONAL_AT_RUN_TIME)
    assert not missing, f"loaded by a function at run time but not in the layer: {sorted(missing)}"
