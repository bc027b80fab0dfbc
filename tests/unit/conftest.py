"""The unit tier: one process, no ports, no servers, no child processes.

Each test here runs (setup, call and teardown, fixtures of every scope included) with the
guard of ``tests/support/tier_guard.py``: starting a gRPC server, a subprocess, a
multiprocessing process or a fork fails it with one line naming the folder under
``tests/integration`` it belongs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tier_guard import current, guarded, integration_path

UNIT = Path(__file__).resolve().parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # pytest calls this hook of every conftest for every test: only this folder's are guarded
    if UNIT not in item.path.resolve().parents:
        yield
        return
    with guarded(integration_path(item.path)):
        yield


@pytest.fixture(autouse=True)
def _no_servers_or_processes_in_threads() -> Iterator[None]:
    """Fails the test where a thread of it tried (and may have swallowed the refusal)."""
    yield
    guard = current()
    if guard is not None:
        guard.check()


@pytest.fixture(autouse=True)
def _a_cpu_only_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unit test sees a CPU-only machine: the device inventory is given, never found.
    Found, it would depend on the order tests ran in (asked of torch when an earlier test
    imported it, else of a probe process, which the guard refuses)."""
    from ktrdr.training import device

    monkeypatch.setattr(device, "_inventory", device.DeviceInventory(torch_version="unit"))
