"""Docker-free build of the Lambda dependency layer (arm64, CPython 3.11).

    python layers/build.py            # build layers/build/python (skipped when up to date)
    python layers/build.py --check    # only resolve the dependencies for the target platform
    python layers/build.py --force    # rebuild even when the stamp matches

The runtime dependencies are ``[project].dependencies`` of pyproject.toml, installed with
``pip install --platform manylinux2014_aarch64 --only-binary=:all: --implementation cp
--python-version 3.11 --target layers/build/python``. The build is idempotent: a stamp file holds
a hash of the dependency list and the target platform, and a matching stamp skips the install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "layers" / "build"
STAMP = BUILD_DIR / ".stamp"
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.11"
PIP_TARGET_OPTIONS = [
    "--platform", PLATFORM,
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
]
# what the Lambda runtime or the layer never needs at run time
PRUNE_GLOBS = ("**/__pycache__", "**/tests", "*.dist-info/RECORD")


def runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def deps_hash(deps: list[str]) -> str:
    payload = json.dumps({"deps": sorted(deps), "platform": PLATFORM, "python": PYTHON_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def check(deps: list[str] | None = None) -> list[dict]:
    """Resolve (without installing) for the Lambda platform; returns pip's install report entries."""
    deps = deps or runtime_dependencies()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [*_pip(), "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report),
             "--target", str(Path(tmp) / "target"), *PIP_TARGET_OPTIONS, *deps],
            check=True,
        )
        return json.loads(report.read_text()).get("install", [])


def build(force: bool = False, deps: list[str] | None = None) -> Path:
    """Build layers/build (its ``python/`` is the layer content); returns layers/build."""
    deps = deps or runtime_dependencies()
    digest = deps_hash(deps)
    target = BUILD_DIR / "python"
    if not force and STAMP.exists() and STAMP.read_text().strip() == digest and target.is_dir():
        return BUILD_DIR
    staging = BUILD_DIR.with_name("build.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [*_pip(), "install", "--quiet", "--no-compile", "--target", str(staging / "python"),
         *PIP_TARGET_OPTIONS, *deps],
        check=True,
    )
    for pattern in PRUNE_GLOBS:
        for path in (staging / "python").glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    (staging / ".stamp").write_text(digest + "\n")
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    staging.rename(BUILD_DIR)
    return BUILD_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only resolve the dependencies for the target")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = parser.parse_args(argv)
    if args.check:
        resolved = check()
        for item in resolved:
            meta = item.get("metadata", {})
            print(f"{meta.get('name')}=={meta.get('version')}")
        return 0
    path = build(force=args.force)
    print(path / "python")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
