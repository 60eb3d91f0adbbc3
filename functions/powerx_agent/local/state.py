"""``local serve --state-dir DIR``: the embedded runtime's data survives a restart.

At a clean stop (Ctrl-C, SIGTERM) every item of every DynamoDB table of the design (events, workflows
and their nodes and reviews, the audit trail, strategies and flags, tenants) is written to
``DIR/dynamodb.json`` (a temporary file, then an atomic rename); the next start writes them back after
seeding, so what the last run changed wins. Restored audit records flow through the table's stream
again, so the audit log group is rebuilt as well.

What does not survive, because moto keeps it in memory only: Step Functions executions and their
history, queued SQS messages, the EventBridge archive and CloudWatch metrics. A workflow that was
RUNNING when the runtime stopped has no execution after the restart; ``powerx-agent repair`` reports
it (``execution.missing``) and ``workflow retry`` starts it again.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from powerx_agent import spec

FILE = "dynamodb.json"
FORMAT = 1
_BATCH = 25


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path / FILE

    def reset(self) -> bool:
        """Forget the saved state (``--reset``): True when there was one."""
        existed = self.file.exists()
        self.file.unlink(missing_ok=True)
        return existed

    def save(self, ddb: Any) -> dict[str, int]:
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in spec.TABLES:
            items: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"TableName": table.name}
            while True:
                page = ddb.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            tables[table.name] = items
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "saved_at": time.time(), "tables": _encode(tables)}))
        os.replace(tmp, self.file)
        return {name: len(items) for name, items in tables.items()}

    def load(self) -> dict[str, list[dict[str, Any]]]:
        if not self.file.exists():
            return {}
        try:
            doc = json.loads(self.file.read_text())
        except ValueError as exc:
            raise ValueError(f"{self.file} is not a saved state ({exc}); start with --reset to discard it") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tables"), dict):
            raise ValueError(f"{self.file} is not a saved state of format {FORMAT}; start with --reset to discard it")
        known = {table.name for table in spec.TABLES}
        return {name: _decode(items) for name, items in doc["tables"].items() if name in known}

    def restore(self, ddb: Any) -> dict[str, int]:
        restored = {}
        for name, items in self.load().items():
            for start in range(0, len(items), _BATCH):
                requests: dict[str, Any] = {name: [{"PutRequest": {"Item": item}}
                                                   for item in items[start:start + _BATCH]]}
                while requests:
                    requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            restored[name] = len(items)
        return restored
