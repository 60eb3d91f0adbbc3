"""CloudWatch alarms of the deployment (the console's Health page): their names, states and reasons.
Read only; an operator path (the functions never read alarms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str
    reason: str
    updated: str


class Alarms:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def states(self, prefix: str, limit: int = 500) -> list[AlarmState]:
        """Metric and composite alarms whose name starts with ``prefix``, alarming first."""
        found: list[AlarmState] = []
        kwargs: dict[str, Any] = {"AlarmNamePrefix": prefix, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
        while len(found) < limit:
            page = self._cloudwatch.describe_alarms(**kwargs)
            for item in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found.append(AlarmState(str(item.get("AlarmName")), str(item.get("StateValue")),
                                        str(item.get("StateReason") or ""), str(item.get("StateUpdatedTimestamp") or "")))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
        return sorted(found[:limit], key=lambda a: (order.get(a.state, 3), a.name))
