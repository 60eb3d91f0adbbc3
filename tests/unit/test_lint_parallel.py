"""``strategy lint`` with worker processes reports exactly what one process reports: per-file
findings from every chunk, and the cross-file checks (duplicate ids, weight ties) across chunks."""

from __future__ import annotations

from pathlib import Path

from powerx_agent.strategy import lint

FILES = 420  # above lint.PARALLEL_FROM_FILES: the default is to fork workers


def strategy(i: int, sid: str | None = None, weight: int | None = None) -> str:
    return (f"id: {sid or f'p-{i:04d}'}\nversion: 1\nstatus: approved\nowner: o@example.com\n"
            f"on: {{event: lint.type.{i % 7}}}\nwhen: {{path: $.payload.n, gt: {i}}}\n"
            f"weight: {i if weight is None else weight}\nflow:\n  nodes:\n    - {{id: a, plugin: p}}\n")


def test_given_a_large_library_when_linted_by_workers_then_findings_equal_one_process(tmp_path: Path):
    assert FILES >= lint.PARALLEL_FROM_FILES
    for i in range(FILES):
        (tmp_path / f"s{i:04d}.yaml").write_text(strategy(i))
    (tmp_path / "s0003.yaml").write_text(strategy(3).replace("gt:", "gtt:"))  # a per-file error
    (tmp_path / "s0400.yaml").write_text(strategy(400, sid="p-0001"))  # duplicate of the first chunk's p-0001
    (tmp_path / "s0411.yaml").write_text(strategy(411, weight=5))  # ties with p-0005 (same type, weight)
    one = lint.lint_directory(tmp_path, jobs=1)
    many = lint.lint_directory(tmp_path, jobs=3)
    assert many == one
    codes = sorted({f.code for f in one})
    assert codes == ["condition.unknown_operator", "strategy.duplicate_id", "strategy.weight_tie"], codes
