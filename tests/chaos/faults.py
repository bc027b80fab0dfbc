"""The faults the soak injects, and the thread that injects them at the planned moments.

Faults run one after the other (never two at once), each at its planned offset from the soak's
start, or at once when the previous one overran. Every fault records when it really started and
ended, so a failure can be set beside the logs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.chaos.cluster import MAX_UPLOADS, Cluster
from tests.chaos.schedule import (
    FILL_DISK,
    HOLD_SLOTS,
    KILL_BACKEND,
    KILL_HOST,
    LOCK_DB,
    ROTATE_TOKEN,
    Fault,
)
from tests.support.disk import Filler
from tests.support.processes import channel_to
from tests.support.timing import scaled, wait_until

# Holds a write lock on the database for argv[2] seconds once it has it ("locked" on stdout).
_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
db.close()
"""


@dataclass
class FaultRecord:
    fault: Fault
    started_s: float
    ended_s: float = 0.0
    note: str = ""

    def describe(self) -> str:
        text = f"{self.fault.describe()} (ran {self.started_s:.1f}s-{self.ended_s:.1f}s)" + (
            f": {self.note}" if self.note else ""
        )
        return text


class DatabaseLock:
    """Another process holding ``BEGIN IMMEDIATE`` on the database (writers wait or fail)."""

    def __init__(self, db_path: Path, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db_path), str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def hold(self, seconds: float) -> None:
        """Wait until the lock is taken, then until the locker lets it go (bounded)."""
        try:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()  # returns at "locked" or at exit
            if line.strip() != "locked":
                raise RuntimeError(f"database locker: {self.process.communicate()[1][-2000:]}")
            self.process.wait(seconds + scaled(30))
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)


class SlotHolder:
    """A SubmitResults stream with the host-role token that sends nothing: it holds one of the
    backend's upload slots (a slow stream) until ``release``."""

    def __init__(self, address: str, token: str, seconds: float) -> None:
        self._release = threading.Event()
        self._seconds = seconds
        self._channel = channel_to(address, token)
        stub = backend_pb2_grpc.BackendStub(self._channel)
        self.call = stub.SubmitResults.future(self._nothing(), timeout=seconds + scaled(30))

    def _nothing(self) -> Iterator[pb.SubmitResultsRequest]:
        self._release.wait(self._seconds + scaled(30))
        return
        yield  # a generator that yields nothing

    def release(self) -> None:
        self._release.set()
        self.call.cancel()
        self._channel.close()


class FaultInjector(threading.Thread):
    """Runs the planned faults against ``cluster``; ``stop`` ends it after the current one."""

    def __init__(self, cluster: Cluster, plan: list[Fault], start: float) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.cluster = cluster
        self.plan = plan
        self.start_time = start
        self.records: list[FaultRecord] = []
        self.error: str = ""
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def now(self) -> float:
        return time.monotonic() - self.start_time

    def run(self) -> None:
        for fault in self.plan:
            if self._halt.wait(max(0.0, fault.at_s - self.now())):
                return
            record = FaultRecord(fault, self.now())
            self.records.append(record)
            print(f"[chaos] fault at {record.started_s:6.1f}s: {fault.describe()}", flush=True)
            try:
                record.note = self._inject(fault)
            except Exception:
                record.note = "error"
                self.error = f"{fault.describe()}: {traceback.format_exc()}"
                print(f"[chaos] fault failed: {self.error}", flush=True)
                return
            finally:
                record.ended_s = self.now()

    def _inject(self, fault: Fault) -> str:
        cluster = self.cluster
        if fault.kind == KILL_HOST:
            cluster.kill_host(fault.target, fault.duration_s)
            return ""
        if fault.kind == KILL_BACKEND:
            cluster.kill_backend(fault.duration_s)
            return ""
        if fault.kind == ROTATE_TOKEN:
            return f"now {cluster.rotate_host_token()}"
        if fault.kind == LOCK_DB:
            DatabaseLock(cluster.data_dir / "backend.db", fault.duration_s).hold(fault.duration_s)
            return ""
        if fault.kind == HOLD_SLOTS:
            return self._hold_slots(fault.duration_s)
        if fault.kind == FILL_DISK:
            if not cluster.disk.mounted:
                return f"SKIPPED: cannot mount a tmpfs here ({cluster.disk.why_not})"
            filler = Filler(cluster.disk.path, "chaos-filler")
            try:
                filler.fill()
                time.sleep(fault.duration_s)  # the fault's length
            finally:
                filler.free()
            return ""
        raise ValueError(f"unknown fault {fault.kind!r}")

    def _hold_slots(self, seconds: float) -> str:
        holders = [
            SlotHolder(self.cluster.backend_address, self.cluster.host_token, seconds)
            for _ in range(MAX_UPLOADS)
        ]
        try:
            busy = _slots_busy(self.cluster)
            time.sleep(seconds)  # the fault's length
        finally:
            for holder in holders:
                holder.release()
        return "slots held" if busy else "slots not seen busy"


def _slots_busy(cluster: Cluster) -> bool:
    """True once one more upload is refused with RESOURCE_EXHAUSTED (bounded, 10 s)."""
    header = pb.SubmitResultsRequest(header=pb.SubmitResultsHeader(session_id="no-such-op"))

    def refused() -> bool:
        with channel_to(cluster.backend_address, cluster.host_token) as channel:
            try:
                backend_pb2_grpc.BackendStub(channel).SubmitResults(iter([header]), timeout=5)
            except grpc.RpcError as exc:
                return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        return False

    try:
        wait_until(refused, 10, "the upload slots to be held", poll_s=0.2)
    except AssertionError:
        return False
    return True
