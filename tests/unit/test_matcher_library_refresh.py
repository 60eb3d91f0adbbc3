"""The matcher rebuilds its library only when the published revision changes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from powerx_agent.clock import SYSTEM_CLOCK
from powerx_agent.match.service import Matcher

STRATEGY = (Path(__file__).resolve().parents[2] / "strategies" / "report-on-job-completed.yaml").read_text()


class CountingStrategies:
    def __init__(self) -> None:
        self.item = {"revision": 4, "active": {"report-on-job-completed": 3}}
        self.documents_read = 0

    def revision(self) -> dict:
        return dict(self.item)

    def documents(self, active: dict) -> list[tuple[str, str]]:
        self.documents_read += 1
        return [(f"{sid}@v{v}", STRATEGY) for sid, v in active.items()]


def test_given_unchanged_revision_when_refreshed_then_library_not_rebuilt_and_labelled_by_revision():
    store = CountingStrategies()
    deps = SimpleNamespace(settings=SimpleNamespace(library_source="table", library_refresh_seconds=0.0),
                           flags=SimpleNamespace(enabled=lambda name, ctx=None: True), strategies=store,
                           process_state={}, clock=SYSTEM_CLOCK)
    matcher = Matcher(deps, metrics=None)
    first = matcher.library()
    again = matcher.library()
    assert first is again and first.revision == "r4" and store.documents_read == 1
    store.item = {"revision": 5, "active": {"report-on-job-completed": 3}}
    assert matcher.library().revision == "r5" and store.documents_read == 2
