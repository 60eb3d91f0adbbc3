"""Issue 6: the ingest handler module imports lazily (what it loads, never how long it takes).

Each test runs a fresh interpreter, because this test session has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

# heavy packages the ingest handler's module import must not load: the envelope model (pydantic) is
# built on the first event; YAML, JSONPath, the strategy library and moto are not on the ingest path
NOT_AT_IMPORT = ("pydantic", "pydantic_core", "yaml", "jsonpath_ng", "moto", "powerx_agent.ingest.envelope",
                 "powerx_agent.strategy", "powerx_agent.taskflow", "powerx_agent.match",
                 "aws_lambda_powertools.utilities.feature_flags", "aws_lambda_powertools.event_handler")


def _loaded_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    env.pop("AWS_ENDPOINT_URL", None)
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_given_fresh_interpreter_when_ingest_handler_imported_then_no_heavy_module_is_loaded():
    loaded = _loaded_after("import powerx_agent.handlers.ingest")

    assert "powerx_agent.ingest.service" in loaded
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in NOT_AT_IMPORT))
    assert heavy == []


def test_given_fresh_import_when_first_event_handled_then_envelope_model_is_loaded_and_used():
    code = (
        "import powerx_agent.handlers.ingest\n"
        "from powerx_agent.ingest.service import Ingestor\n"
        "from powerx_agent.settings import load_settings\n"
        "class Sink:\n"
        "    def __getattr__(self, name): return lambda *a, **k: None\n"
        "class Deps:\n"
        "    settings = load_settings(); tenants = Sink(); audit = Sink(); queues = Sink()\n"
        "result = Ingestor(Deps(), Sink()).handle({'source': 's', 'detail-type': 't', 'detail': {'x': 1}})\n"
        "assert result.code == 'envelope.missing_field', result\n"
    )
    loaded = _loaded_after(code)

    assert {"pydantic", "powerx_agent.ingest.envelope"} <= loaded
