"""The unit tier's guard: while a test under ``tests/unit`` runs (its fixtures of any scope
included), starting a gRPC server (``grpc.server``, ``grpc.aio.server``), a subprocess
(``subprocess.Popen``, which ``subprocess.run`` and asyncio's subprocesses use), a
multiprocessing process or a fork fails the test with one line naming the folder it belongs
in. ``tests/unit/conftest.py`` installs it around each unit test; ``tests/unit/test_tier_guard.py``
proves it fires.
"""

from __future__ import annotations

import multiprocessing.process
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import grpc.aio
import pytest

MESSAGE = "unit tests start no servers or processes: move this test to {target} (it called {what})"
TESTS = Path(__file__).resolve().parents[1]


def integration_path(test_file: Path) -> str:
    """Where a unit test file that needs a server or a process belongs: the same place under
    ``tests/integration``."""
    try:
        return str(Path("tests/integration") / test_file.resolve().relative_to(TESTS / "unit"))
    except ValueError:
        return "tests/integration/..."


class Guard:
    """Refuses servers and processes; remembers refusals made off the main thread, where the
    exception may be swallowed, so the test fails anyway (``check``)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.elsewhere: list[str] = []

    def refuse(self, what: str) -> None:
        message = MESSAGE.format(target=self.target, what=what)
        if threading.current_thread() is not threading.main_thread():
            self.elsewhere.append(message)
        pytest.fail(message, pytrace=False)

    def check(self) -> None:
        if self.elsewhere:
            pytest.fail(self.elsewhere[0], pytrace=False)


_active: list[Guard] = []


def current() -> Guard | None:
    """The guard of the unit test running now, if one is."""
    return _active[-1] if _active else None


@contextmanager
def guarded(target: str) -> Iterator[Guard]:
    """The guard installed while the block runs."""
    guard = Guard(target)

    def refusing(what: str):  # type: ignore[no-untyped-def]
        def refuse(*args: object, **kwargs: object) -> None:
            guard.refuse(what)

        return refuse

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grpc, "server", refusing("grpc.server"))
        patch.setattr(grpc.aio, "server", refusing("grpc.aio.server"))
        # the child is made here, after Popen has what its __del__ needs
        patch.setattr(subprocess.Popen, "_execute_child", refusing("subprocess.Popen"))
        patch.setattr(
            multiprocessing.process.BaseProcess, "start", refusing("multiprocessing start")
        )
        patch.setattr(os, "fork", refusing("os.fork"))
        _active.append(guard)
        try:
            yield guard
        finally:
            _active.remove(guard)
