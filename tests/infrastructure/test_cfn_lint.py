"""cfn-lint over the synthesized template: zero errors (and no warnings besides CDK's W3005)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# W3005: CDK adds DependsOn on a role's default policy next to the GetAtt of the role (intentional:
# the function must not be created before its policy exists).
IGNORED = {"W3005"}


def test_cfn_lint_has_no_errors(synth, tmp_path):
    template = tmp_path / "PowerXAgent.template.json"
    template.write_text(json.dumps(synth.json))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", "--regions", "us-east-1", "eu-west-1", "--", str(template)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode in (0, 4, 8, 12), result.stderr  # 2 = errors; 4 warnings; 8 informational
    matches = json.loads(result.stdout or "[]")
    errors = [m for m in matches if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    warnings = [m for m in matches if m["Level"] == "Warning" and m["Rule"]["Id"] not in IGNORED]
    assert not warnings, json.dumps(warnings, indent=1)[:4000]
