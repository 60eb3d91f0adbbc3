"""A strategy library is listed one way: lint, simulate, publish and the local seeding see the same files.

The rule (docs/strategies.md, "Which files are strategies"): every *.yaml / *.yml under the directory,
subfolders included, a ``.draft.yaml`` name included, hidden files and folders excluded, and the ``tests/``
folder at the top (strategy test fixtures) excluded."""

from __future__ import annotations

from pathlib import Path

from powerx_agent.local.deployer import publish_directory
from powerx_agent.ops import strategy as lifecycle
from powerx_agent.strategy.library import library_from_directory
from powerx_agent.strategy.lint import lint_directory
from powerx_agent.strategy.loader import strategy_files
from powerx_agent.testing.fakes import FakeDeps

REPO = Path(__file__).resolve().parents[2]
BASE = (REPO / "strategies" / "report-on-job-completed.yaml").read_text()


def _library(tmp_path: Path) -> Path:
    """team-a/x.yaml (a subfolder), y.draft.yaml (a draft by name), .hidden/z.yaml and .w.yaml (hidden),
    tests/fixture.yaml (the fixtures folder)."""
    for rel, sid in (("team-a/x.yaml", "team-a-x"), ("y.draft.yaml", "draft-y"), (".hidden/z.yaml", "hidden-z"),
                     (".w.yaml", "hidden-w"), ("notes.txt", "not-yaml"), ("tests/fixture.yaml", "a-fixture")):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BASE.replace("id: report-on-job-completed", f"id: {sid}").replace("weight: ", "weight: 1"))
    return tmp_path


def test_given_a_library_with_subfolders_drafts_and_hidden_files_when_listed_then_the_rule_holds(tmp_path):
    root = _library(tmp_path)
    assert [p.relative_to(root).as_posix() for p in strategy_files(root)] == ["team-a/x.yaml", "y.draft.yaml"]


def test_given_the_same_library_when_linted_simulated_published_and_seeded_then_every_tool_sees_the_same_strategies(
        tmp_path):
    root = _library(tmp_path)
    expected = {"team-a-x", "draft-y"}
    findings = lint_directory(root)
    assert not [f for f in findings if f.severity == "error"], findings
    assert {c.strategy.id for c in library_from_directory(root).strategies} == expected
    deps = FakeDeps.create(strategies_dir=REPO / "strategies")
    published = lifecycle.publish(deps, root, "ann")
    assert {p.strategy_id for p in published} == expected  # publish used to miss team-a/x.yaml
    seeded = FakeDeps.create(strategies_dir=root)
    assert {sid for sid in expected if seeded.strategies.versions(sid)} == expected
    assert not seeded.strategies.versions("hidden-z") and not seeded.strategies.versions("hidden-w")
    assert publish_directory  # the local runtime seeds through the same listing (FakeDeps.create uses it)


def test_given_a_symlinked_folder_and_a_nested_tests_folder_when_listed_then_only_the_real_tree_and_nested_tests(
        tmp_path):
    root = _library(tmp_path / "lib")
    (root / "team-b" / "tests").mkdir(parents=True)
    (root / "team-b" / "tests" / "t.yml").write_text(BASE)
    (root / "linked").symlink_to(root / "team-a", target_is_directory=True)  # not entered, as rglob does not
    (root / "dir.yaml").mkdir()
    (root / "dir.yaml" / "in.yaml").write_text(BASE)
    assert [p.relative_to(root).as_posix() for p in strategy_files(root)] == [
        "dir.yaml/in.yaml", "team-a/x.yaml", "team-b/tests/t.yml", "y.draft.yaml"]
    assert strategy_files(root / "y.draft.yaml") == [root / "y.draft.yaml"]
