"""The accepted event sources are documented where producers look: docs/intake.md and the README."""

from __future__ import annotations

import re
from pathlib import Path

from powerx_agent import spec

REPO = Path(__file__).resolve().parents[2]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end > 0 else None]


def test_given_intake_doc_when_read_then_its_accepted_sources_table_lists_exactly_the_routed_sources():
    section = _section((REPO / "docs" / "intake.md").read_text(), "## Accepted sources")
    rows = re.findall(r"^\| `([a-z0-9.-]+)` \|", section, flags=re.M)
    assert rows == list(spec.EVENT_SOURCES)


def test_given_the_readme_when_read_then_it_names_every_routed_source_and_the_unrouted_queue():
    section = _section((REPO / "README.md").read_text(), "## How an event flows")
    named = re.findall(r"`(powerx\.[a-z]+)`", section)
    assert named == list(spec.EVENT_SOURCES)
    assert spec.UNROUTED_QUEUE.name in section and "source.not_routed" in section
