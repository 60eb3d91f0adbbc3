"""Docker-free build of the Lambda dependency layer (arm64, CPython 3.11), from a lock file.

    python layers/build.py              # build layers/build/python from layers/requirements.txt (skipped when up to date)
    python layers/build.py --lock       # resolve [tool.powerx-agent.layer] dependencies, write layers/requirements.txt
    python layers/build.py --manifest   # build if needed, then print the layer's contents and size (docs/deploy.md)
    python layers/build.py --force      # rebuild even when the stamp matches

The layer ships what the Lambda functions import and nothing else: ``[tool.powerx-agent.layer]
dependencies`` of pyproject.toml, a subset of ``[project].dependencies`` without the packages only the
console script uses (typer, rich, grandalf). :func:`handler_imports` finds, from each function's
handler module of ``powerx_agent.spec``, every third-party module it can reach (following the package's
own imports, function-local ones included); tests/infrastructure/test_layer.py holds the two lists equal.

``--lock`` resolves those dependencies for the Lambda platform (``pip install --dry-run --report
--platform manylinux2014_aarch64 --only-binary=:all: --implementation cp --python-version 3.11``) into
exact pins, ``layers/requirements.txt``; the build installs exactly those pins (``--no-deps``), so the
layer is the same on every machine until the lock is renewed on purpose. A stamp file holds a hash of
the lock and the platform; a matching stamp skips the install. ``layers/build/manifest.json`` lists each
distribution with its version and size (the files of its RECORD), written at build time.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "layers" / "build"
LOCK = REPO_ROOT / "layers" / "requirements.txt"
STAMP = BUILD_DIR / ".stamp"
MANIFEST = BUILD_DIR / "manifest.json"
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.11"
PIP_TARGET_OPTIONS = [
    "--platform", PLATFORM,
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
]
# what the Lambda runtime never needs at run time: byte code caches, test suites, console scripts (RECORD
# stays: it is how the manifest sizes a distribution)
PRUNE_GLOBS = ("**/__pycache__", "**/tests", "bin")


def layer_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["tool"]["powerx-agent"]["layer"]["dependencies"])


def project_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0])


def read_lock(lock: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} from ``name==version`` lines."""
    pins = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


# -- what the functions import ------------------------------------------------------------------
def _module_file(package_root: Path, module: str) -> Path | None:
    parts = module.split(".")
    base = package_root.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def handler_imports(repo_root: Path = REPO_ROOT) -> dict[str, set[str]]:
    """Third-party top-level module -> the package modules (reached from a handler) that import it."""
    package_root = repo_root / "functions" / "powerx_agent"
    sys.path.insert(0, str(package_root.parent))
    try:
        from powerx_agent import spec
    finally:
        sys.path.pop(0)
    stdlib = set(sys.stdlib_module_names)
    todo = [f.handler.rsplit(".", 1)[0] for f in spec.FUNCTIONS]
    seen: set[str] = set()
    found: dict[str, set[str]] = {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(package_root, module)
        if path is None:
            continue
        for parent in range(1, module.count(".") + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            todo.append(module.rsplit(".", parent)[0])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top == "powerx_agent":
                    todo.append(name)
                elif top not in stdlib and top != "__future__":
                    found.setdefault(top, set()).add(module)
    return found


# -- lock, build, manifest ----------------------------------------------------------------------
def _pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def lock(deps: list[str] | None = None, target: Path = LOCK) -> dict[str, str]:
    """Resolve the layer's dependencies for the Lambda platform and write the exact pins."""
    deps = deps or layer_dependencies()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [*_pip(), "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report),
             "--target", str(Path(tmp) / "target"), *PIP_TARGET_OPTIONS, *deps],
            check=True,
        )
        resolved = json.loads(report.read_text()).get("install", [])
    pins = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in resolved}
    header = ("# The Lambda dependency layer, pinned for manylinux2014_aarch64 / CPython 3.11.\n"
              "# Written by `python layers/build.py --lock` from [tool.powerx-agent.layer] dependencies; "
              "do not edit.\n")
    target.write_text(header + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return pins


def stamp_hash(lock_file: Path = LOCK) -> str:
    payload = json.dumps({"lock": lock_file.read_text(), "platform": PLATFORM, "python": PYTHON_VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def build(force: bool = False) -> Path:
    """Build layers/build (its ``python/`` is the layer content) from the lock; returns layers/build."""
    digest = stamp_hash()
    target = BUILD_DIR / "python"
    if not force and STAMP.exists() and STAMP.read_text().strip() == digest and target.is_dir() and MANIFEST.exists():
        return BUILD_DIR
    staging = BUILD_DIR.with_name("build.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [*_pip(), "install", "--quiet", "--no-compile", "--no-deps", "--target", str(staging / "python"),
         *PIP_TARGET_OPTIONS, "-r", str(LOCK)],
        check=True,
    )
    for pattern in PRUNE_GLOBS:
        for path in (staging / "python").glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    (staging / "manifest.json").write_text(json.dumps(manifest(staging / "python"), indent=2) + "\n")
    (staging / ".stamp").write_text(digest + "\n")
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    staging.rename(BUILD_DIR)
    return BUILD_DIR


def manifest(python_dir: Path) -> dict:
    """Each distribution in the layer (name, version, bytes of its files) and the totals: unzipped and
    zipped (deflate, as the asset is uploaded), which count against Lambda's 250 MB / 50 MB limits."""
    distributions = []
    owned: set[Path] = set()
    for info in sorted(python_dir.glob("*.dist-info")):
        meta = {}
        for line in (info / "METADATA").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(": ")
            meta.setdefault(key, value)
        files = set()
        record = info / "RECORD"
        for row in record.read_text(encoding="utf-8").splitlines() if record.exists() else []:
            path = (python_dir / row.split(",", 1)[0]).resolve()
            if path.is_file() and python_dir.resolve() in path.parents:
                files.add(path)
        owned |= files
        distributions.append({"name": canonical(meta["Name"]), "version": meta["Version"],
                              "bytes": sum(p.stat().st_size for p in files)})
    every = [p for p in python_dir.rglob("*") if p.is_file()]
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(every):
                archive.write(path, Path("python") / path.relative_to(python_dir))
        zipped = handle.tell()
    return {"distributions": sorted(distributions, key=lambda d: d["name"]),
            "unzipped_bytes": sum(p.stat().st_size for p in every),
            "zipped_bytes": zipped,
            "files_without_distribution": len([p for p in every if p.resolve() not in owned])}


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"


def manifest_markdown(data: dict) -> str:
    mb = 1024 * 1024
    rows = ["| distribution | version | size |", "|---|---|---|"]
    rows += [f"| `{d['name']}` | {d['version']} | {_size(d['bytes'])} |" for d in data["distributions"]]
    rows.append(f"| **total** ({len(data['distributions'])} distributions) | | **{data['unzipped_bytes'] / mb:.1f} MB**"
                f" unzipped, **{data['zipped_bytes'] / mb:.1f} MB** zipped |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", action="store_true", help="resolve the layer dependencies into layers/requirements.txt")
    parser.add_argument("--manifest", action="store_true", help="print the layer's contents and size (Markdown)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = parser.parse_args(argv)
    if args.lock:
        for name, version in sorted(lock().items()):
            print(f"{name}=={version}")
        return 0
    path = build(force=args.force)
    if args.manifest:
        print(manifest_markdown(json.loads((path / "manifest.json").read_text())))
        return 0
    print(path / "python")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
