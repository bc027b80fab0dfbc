"""A pytest plugin that makes collection fail where a test module imports something heavy.

``pytest -p tests.support.light_collection --collect-only`` refuses, while test modules are
collected, the imports listed in ``HEAVY``: a test module (or conftest) that imports one at
its top shows up as a collection error naming it. Tests import such modules inside the test
or in a fixture, so collecting (and selecting) tests costs no training stack.
``tests/integration/test_collection.py`` runs this over the whole suite.
"""

from __future__ import annotations

import importlib.abc
import sys

import pytest

HEAVY = ("torch", "pandas", "matplotlib", "ray", "mlflow", "optuna", "sklearn", "scipy", "talib")


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"{name} imported while tests are collected (import it in the test)")
        return None


_finder = _Refuse()
# Installed when the plugin loads (``-p``), before any conftest is imported.
if not any(m in sys.modules for m in HEAVY):
    sys.meta_path.insert(0, _finder)


def pytest_sessionstart(session: pytest.Session) -> None:
    if _finder not in sys.meta_path:
        loaded = [m for m in HEAVY if m in sys.modules]
        raise pytest.UsageError(f"already imported before the plugin loaded: {loaded}")


def pytest_collection_finish(session: pytest.Session) -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
