"""Fixtures that start real host processes and always kill them (see ``host_processes.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.host.host_processes import HostProcess, HostProcesses


@pytest.fixture
def host_processes(tmp_path: Path) -> Iterator[HostProcesses]:
    processes = HostProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()


@pytest.fixture(scope="module")
def shared_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One host process for the tests of a module that leave no session running."""
    processes = HostProcesses(tmp_path_factory.mktemp("shared-host"))
    try:
        yield processes.start()
    finally:
        processes.kill_all()
