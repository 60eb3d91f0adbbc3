"""`cdk synth` through the real CLI (node_modules/.bin/cdk), once, offline, with cdk-nag at synth.

The app's default path builds the dependency layer with layers/build.py (idempotent; pip against the
package index). If that build cannot run here, the synth falls back to a placeholder layer so the
CLI path is still proven.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _layer_context(layer_placeholder: Path) -> list[str]:
    env = dict(os.environ, PIP_DEFAULT_TIMEOUT="10", PIP_RETRIES="1")
    try:
        build = subprocess.run(
            [sys.executable, str(REPO_ROOT / "layers" / "build.py")],
            capture_output=True, text=True, timeout=150, env=env,
        )
    except subprocess.TimeoutExpired:
        build = None
    if build is not None and build.returncode == 0:
        return []  # the app uses layers/build
    return ["-c", f"layerAssetDir={layer_placeholder}"]


@pytest.mark.skipif(not CDK.exists(), reason="run `npm install` (make setup) for the aws-cdk CLI")
def test_cdk_cli_synth(tmp_path, layer_placeholder):
    env = dict(
        os.environ,
        CDK_DISABLE_VERSION_CHECK="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
    )
    env.pop("AWS_PROFILE", None)
    outdir = tmp_path / "cdk.out"
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(outdir), *_layer_context(layer_placeholder)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template = json.loads((outdir / "PowerXAgent.template.json").read_text())
    assert template["Resources"]
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert "PowerXAgent" in manifest["artifacts"]
    report = outdir / "validation-report.json"
    if report.exists():  # cdk-nag ran as a policy validation plugin and reported nothing
        assert not json.loads(report.read_text()).get("pluginReports")
