"""The Lambda code asset: the handlers' package, the baseline strategy library and the event-type payload
contracts, nothing else.

The matcher falls back to the library shipped with the code when the feature flag
``agent-strategy-library`` is off (``STRATEGIES_DIR=/var/task/strategies``); these tests open the
asset CDK staged into the cloud assembly and run the real code from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from powerx_agent import spec
from powerx_agent.strategy.loader import strategy_files

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def asset_dir(synth) -> Path:
    keys = {r["Properties"]["Code"]["S3Key"] for r in synth.of_type("AWS::Lambda::Function").values()}
    assert len(keys) == 1, f"every function should share one code asset, got {keys}"
    (key,) = keys
    path = Path(synth.app.outdir) / f"asset.{key.removesuffix('.zip')}"
    assert path.is_dir(), path
    return path


def test_given_the_asset_when_listed_then_it_holds_every_handler_and_the_strategy_files_byte_for_byte(asset_dir):
    for fn in spec.FUNCTIONS:
        module = fn.handler.rsplit(".", 1)[0]
        assert (asset_dir / (module.replace(".", "/") + ".py")).is_file(), fn.handler
    shipped = {p.relative_to(asset_dir / "strategies").as_posix(): p.read_bytes()
               for p in (asset_dir / "strategies").rglob("*") if p.is_file()}
    source = {p.relative_to(REPO_ROOT / "strategies").as_posix(): p.read_bytes()
              for p in strategy_files(REPO_ROOT / "strategies")}
    assert source and shipped == source
    contracts = {p.name: p.read_bytes() for p in (asset_dir / "event-types").iterdir()}
    assert contracts and contracts == {p.name: p.read_bytes()
                                       for p in (REPO_ROOT / "config" / "event-types").glob("*.schema.json")}


def test_given_the_asset_when_listed_then_no_tests_caches_local_runtime_cli_ops_or_fakes_are_shipped(asset_dir):
    names = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*")}
    assert {n.split("/")[0] for n in names} == {"powerx_agent", "strategies", "event-types"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests" in n]
    assert not {"powerx_agent/local", "powerx_agent/loadtest", "powerx_agent/cli", "powerx_agent/ops",
                "powerx_agent/testing"} & names


_PROBE = r"""
import importlib, json, os, sys
from types import SimpleNamespace
import powerx_agent
from powerx_agent import spec
from powerx_agent.clock import SYSTEM_CLOCK
from powerx_agent.settings import load_settings
from powerx_agent.match.service import Matcher
for fn in spec.FUNCTIONS:
    importlib.import_module(fn.handler.rsplit(".", 1)[0])
try:
    importlib.import_module("powerx_agent.local.runtime")
    local_shipped = True
except ModuleNotFoundError:
    local_shipped = False

class FlagsOff:
    def enabled(self, name, context=None):
        return name != "agent-strategy-library"

class Metrics:
    def add(self, *args, **kwargs):
        raise AssertionError(f"the baseline library should load without errors: {args}")

deps = SimpleNamespace(settings=load_settings(), flags=FlagsOff(), process_state={}, strategies=None,
                       clock=SYSTEM_CLOCK)
library = Matcher(deps, Metrics()).library()
print(json.dumps({"package": powerx_agent.__file__, "local_shipped": local_shipped,
                  "revision": library.revision,
                  "strategies": sorted(c.strategy.id for c in library.strategies)}))
"""


def test_given_flag_agent_strategy_library_off_when_the_matcher_runs_from_the_asset_then_it_loads_the_shipped_library(
        asset_dir):
    from powerx_agent.strategy.library import library_from_directory

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(PYTHONPATH=str(asset_dir), PYTHONDONTWRITEBYTECODE="1", AWS_REGION="eu-west-1",
               LIBRARY_SOURCE="table", STRATEGIES_DIR=str(asset_dir / "strategies"))
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=str(asset_dir.parent), env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(asset_dir)  # the asset's code ran, not the repo's
    assert result["local_shipped"] is False
    assert result["revision"].startswith("dir:")
    baseline = library_from_directory(REPO_ROOT / "strategies")
    assert result["strategies"] == sorted(c.strategy.id for c in baseline.strategies)
