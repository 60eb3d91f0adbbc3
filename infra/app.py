"""CDK app entry point: ``cdk synth`` / ``cdk deploy`` (cdk.json: ``.venv/bin/python infra/app.py``).

Context (``-c key=value`` or cdk.json): see ``infra.constants.CONTEXT_DEFAULTS`` and docs/deploy.md.
``layerAssetDir`` points at a prepared layer directory; without it the dependency layer is built
(idempotently) by ``layers/build.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python infra/app.py` puts infra/ first on sys.path: drop it and import the app as the `infra`
# package from the repo root (one way to import each module, whatever started the app).
_INFRA_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _INFRA_DIR]
for path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra import constants  # noqa: E402
from infra.stack import PowerXAgentStack  # noqa: E402


def _truthy(value: object) -> bool:
    return str(value).strip().lower() not in {"false", "0", "no", "off", ""}


def resolve_layer_dir(app: cdk.App) -> Path:
    """``layerAssetDir`` from context, else build (or reuse) layers/build via layers/build.py."""
    configured = app.node.try_get_context("layerAssetDir")
    if configured:
        path = Path(str(configured))
        return path if path.is_absolute() else REPO_ROOT / path
    module_spec = importlib.util.spec_from_file_location("powerx_layer_build", REPO_ROOT / "layers" / "build.py")
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.build()


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, PowerXAgentStack]:
    app = app or cdk.App()
    stack = PowerXAgentStack(
        app,
        str(app.node.try_get_context("stackName") or constants.STACK_NAME),
        layer_dir=resolve_layer_dir(app),
    )
    nag = app.node.try_get_context("cdkNag")
    if _truthy(constants.CONTEXT_DEFAULTS["cdkNag"] if nag is None else nag):
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


if __name__ == "__main__":
    built, _ = build_app()
    built.synth()
