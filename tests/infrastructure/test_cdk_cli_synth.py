"""`cdk synth` through the real CLI (node_modules/.bin/cdk), once, with cdk-nag at synth, and the
real dependency layer built by layers/build.py (idempotent: skipped when layers/build/.stamp matches).

The layer build needs the package index (pip). If it fails, this test FAILS with pip's output; it
does not fall back to a placeholder layer: a silent fallback would hide exactly what the build is
there to catch (a dependency without a manylinux2014_aarch64 / cp311 wheel, a resolver conflict),
and `cdk deploy` would then ship a layer nobody tested. `make test` already needs the registries for
`pip install` and `npm install`, so this adds no new network requirement. To synthesize by hand
without the index, pass a prepared layer: `cdk synth -c layerAssetDir=DIR` (docs/deploy.md).
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


def _build_layer() -> Path:
    env = dict(os.environ, PIP_DEFAULT_TIMEOUT="20", PIP_RETRIES="2")
    try:
        build = subprocess.run(
            [sys.executable, str(REPO_ROOT / "layers" / "build.py")],
            capture_output=True, text=True, timeout=300, env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"layers/build.py did not finish within {exc.timeout} s (is the package index reachable?)")
    if build.returncode != 0:
        pytest.fail(
            "layers/build.py failed, so the Lambda dependency layer cannot be built for arm64/cp311.\n"
            "pip said:\n" + (build.stderr or build.stdout)[-4000:] + "\n"
            "Fix the dependency (it needs a manylinux2014_aarch64 cp311 wheel) or, offline, synthesize by hand "
            "with `cdk synth -c layerAssetDir=DIR`."
        )
    return Path(build.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not CDK.exists(), reason="run `npm install` (make setup) for the aws-cdk CLI")
def test_given_the_repo_when_cdk_synth_runs_then_the_layer_is_built_for_arm64_and_nag_reports_nothing(tmp_path):
    layer_python = _build_layer()
    assert layer_python == REPO_ROOT / "layers" / "build" / "python"
    env = dict(
        os.environ,
        CDK_DISABLE_VERSION_CHECK="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
    )
    env.pop("AWS_PROFILE", None)
    outdir = tmp_path / "cdk.out"
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(outdir)],
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
    # the synthesized layer is the one just built: compiled wheels for Linux arm64, CPython 3.11
    (layer,) = (r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion")
    layer_dir = outdir / f"asset.{layer['Content']['S3Key'].removesuffix('.zip')}" / "python"
    assert layer["CompatibleArchitectures"] == ["arm64"] and layer["CompatibleRuntimes"] == ["python3.11"]
    assert list(layer_dir.glob("pydantic_core/_pydantic_core.cpython-311-aarch64-linux-gnu.so"))
    assert (layer_dir / "aws_lambda_powertools").is_dir() and (layer_dir / "requests").is_dir()
    assert sorted(p.name for p in layer_dir.parent.iterdir()) == ["python"]  # no build stamp or manifest in /opt
    assert not (layer_dir / "typer").exists() and not (layer_dir / "rich").exists()  # console script only
    report = outdir / "validation-report.json"
    if report.exists():  # cdk-nag ran as a policy validation plugin and reported nothing
        assert not json.loads(report.read_text()).get("pluginReports")
