"""Skip markers for optional extras that do not import them (collection stays light)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest

# The distributions that may provide an importable name (the first one installed counts).
DISTRIBUTIONS = {"mlflow": ("mlflow-skinny", "mlflow")}


def installed(module: str) -> bool:
    for name in DISTRIBUTIONS.get(module, (module,)):
        try:
            distribution(name)
            return True
        except PackageNotFoundError:
            continue
    return False


def needs(*modules: str, reason: str = "") -> pytest.MarkDecorator:
    """``pytestmark = needs("optuna")``: skip unless every module's package is installed."""
    missing = [m for m in modules if not installed(m)]
    return pytest.mark.skipif(bool(missing), reason=reason or f"{', '.join(missing)} not installed")
