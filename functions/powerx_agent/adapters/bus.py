"""EventBridge, the one place the engine calls it: PutEvents on the bus and archive replays.

A refusal becomes a result here: :meth:`Bus.put` answers one :class:`PutOutcome` per entry, and a
call that fails as a whole (throttled, unreachable) fails every entry with its error code, so the
callers retry entry by entry without ever reading a botocore code themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from powerx_agent.adapters.aws import error_code


@dataclass(frozen=True)
class PutOutcome:
    event_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


class Bus:
    """The engine's port to its EventBridge bus (``deps.bus``)."""

    def __init__(self, client: Any, name: str) -> None:
        self._events = client
        self.name = name

    def put(self, entries: list[dict[str, Any]]) -> list[PutOutcome]:
        """One PutEvents call (``EventBusName`` is set to this bus); one outcome per entry, in order.
        An answer with fewer results than entries fails the rest (``NoResult``)."""
        try:
            answer = self._events.put_events(Entries=[{**e, "EventBusName": self.name} for e in entries])
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            return [PutOutcome(error_code=code, error_message=str(exc)[:300]) for _ in entries]
        results = answer.get("Entries", [])
        outcomes = [PutOutcome(r.get("EventId"), r.get("ErrorCode") or None, r.get("ErrorMessage"))
                    if r.get("ErrorCode") else PutOutcome(r.get("EventId")) for r in results[:len(entries)]]
        return outcomes + [PutOutcome(error_code="NoResult", error_message="PutEvents returned no result")
                           for _ in entries[len(outcomes):]]

    def replay(self, *, archive: str, rule: str, start: datetime, end: datetime, name: str) -> None:
        """StartReplay of ``archive`` between ``start`` and ``end`` onto this bus, delivered to ``rule`` only."""
        archive_arn = self._events.describe_archive(ArchiveName=archive)["ArchiveArn"]
        bus_arn = self._events.describe_event_bus(Name=self.name)["Arn"]
        rule_arn = self._events.describe_rule(Name=rule, EventBusName=self.name)["Arn"]
        self._events.start_replay(ReplayName=name, EventSourceArn=archive_arn, EventStartTime=start,
                                  EventEndTime=end, Destination={"Arn": bus_arn, "FilterArns": [rule_arn]},
                                  Description="powerx-agent replay")

    def replay_state(self, name: str) -> tuple[str | None, str | None]:
        """(State, StateReason) of a replay."""
        described = self._events.describe_replay(ReplayName=name)
        return described.get("State"), described.get("StateReason")
