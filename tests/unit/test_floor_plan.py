"""The floor plan is written twice, for two readers: the import-linter layers in ``pyproject.toml`` (the
machine) and the table in ``docs/architecture.md`` (people). Both name every folder and module of
the package, once, in the same order; a new module that is on neither is unconstrained and unexplained."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "functions" / "powerx_agent"


def _package_parts() -> set[str]:
    return {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
            if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()}


def _layers() -> list[list[str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [[name.strip() for name in row.split("|")] for row in contract["layers"]]


def _table_names() -> list[str]:
    """The names of the floor-plan table's first column, top to bottom (the ``base`` row lists its
    modules in the second column)."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Floor plan of the code", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| Folder"):
            continue
        cells = line.split("|")
        column = cells[2] if cells[1].strip() == "base" else cells[1]
        names += re.findall(r"`([a-z_]+)(?:/|\.py)?`", column)
    return names


def test_given_the_package_when_read_against_the_layers_contract_then_each_folder_and_module_is_on_one_layer() -> None:
    on_layers = [name for row in _layers() for name in row]
    assert len(on_layers) == len(set(on_layers))
    assert set(on_layers) == _package_parts()


def test_given_the_architecture_table_when_read_then_it_names_each_layer_member_once_in_the_layers_order() -> None:
    names = _table_names()
    assert len(names) == len(set(names))
    assert set(names) == _package_parts()
    layer_of = {name: depth for depth, row in enumerate(_layers()) for name in row}
    depths = [layer_of[name] for name in names]
    assert depths == sorted(depths), list(zip(names, depths, strict=True))
