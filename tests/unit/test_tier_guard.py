"""The unit tier's guard (``tests/unit/conftest.py``, ``tests/support/tier_guard.py``) fails a
unit test that starts a gRPC server, a subprocess or a multiprocessing process, with one line
that says where the test belongs."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.support import tier_guard

WHERE = "move this test to tests/integration/test_tier_guard.py"


def refused(what: str):  # type: ignore[no-untyped-def]
    return pytest.raises(
        pytest.fail.Exception,
        match=rf"^unit tests start no servers or processes: {WHERE} "
        rf"\(it called {what}\)$",
    )


def test_grpc_servers_are_refused() -> None:
    with refused(r"grpc\.aio\.server"):
        grpc.aio.server()
    with refused(r"grpc\.server"):
        grpc.server(futures.ThreadPoolExecutor(1))


def test_subprocesses_are_refused() -> None:
    with refused(r"subprocess\.Popen"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


async def test_asyncio_subprocesses_are_refused() -> None:
    with refused(r"subprocess\.Popen"):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


def test_multiprocessing_processes_are_refused() -> None:
    with refused("multiprocessing start"):
        multiprocessing.get_context("spawn").Process(target=print).start()


def test_a_refusal_swallowed_in_a_thread_still_fails_the_test() -> None:
    guard = tier_guard.current()
    assert guard is not None and not guard.elsewhere

    def swallow() -> None:
        with contextlib.suppress(BaseException):  # what careless code would do
            grpc.aio.server()

    thread = threading.Thread(target=swallow)
    thread.start()
    thread.join()
    with refused(r"grpc\.aio\.server"):
        guard.check()
    guard.elsewhere.clear()  # this test's own teardown would fail on it otherwise


def test_the_message_names_the_mirrored_folder() -> None:
    unit = tier_guard.TESTS / "unit" / "backend" / "test_x.py"
    assert tier_guard.integration_path(unit) == str(Path("tests/integration/backend/test_x.py"))
