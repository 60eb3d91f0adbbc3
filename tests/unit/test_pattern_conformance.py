"""EventBridge event-pattern conformance: every case of the shared reference corpus.

The corpus (``tests/conformance/eventbridge/cases.jsonl``, see its README) holds 631 (pattern,
event, match) cases whose expected booleans come from AWS's event-ruler tests, the EventBridge user
guide and LocalStack runs validated against AWS. It lives in the repository, so every clone and
every CI run checks the matcher against all of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from powerx_agent.strategy.pattern import compile_pattern

CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "eventbridge" / "cases.jsonl"

# Cases whose expected value we knowingly do not reproduce, {case id: reason}. Each one is run as
# xfail(strict=True), so fixing the matcher (or the corpus) makes the suite say so. Keep it empty
# unless a case is genuinely contradictory; currently every case passes.
KNOWN_DIVERGENCES: dict[str, str] = {}


def _load_cases() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASES = _load_cases()


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        if case["id"] in KNOWN_DIVERGENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIVERGENCES[case["id"]]))
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_given_corpus_case_when_matched_then_result_is_the_expected_one(case: dict[str, Any]) -> None:
    # the raw JSON text, when present, keeps number spellings that a re-serialisation loses
    pattern = json.loads(case["pattern_raw"]) if case.get("pattern_raw") else case["pattern"]
    event = json.loads(case["event_raw"]) if case.get("event_raw") else case["event"]

    compiled = compile_pattern(pattern)

    assert compiled.matches(event) is case["match"], (
        f"{case['id']} ({case['feature']}): expected match={case['match']}; source {case['source']}; "
        f"note: {case.get('note', '')}"
    )
    explanation = compiled.explain(event)
    assert (explanation is None) is case["match"], explanation


def test_given_the_corpus_when_loaded_then_ids_are_unique_and_known_divergences_exist() -> None:
    assert len(CASES) >= 631, f"the corpus at {CORPUS} lost cases"
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert set(KNOWN_DIVERGENCES) <= set(ids), "KNOWN_DIVERGENCES names a case that is not in the corpus"
