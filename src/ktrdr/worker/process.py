"""The service's side of a worker process: ``ProcessExecutor`` and its ``SparePool``.

``ProcessExecutor`` has the ``TrainingExecutor``'s ``run`` signature, so the services'
``ExecutorRun`` drives it unchanged (in a thread of its own), but the training happens in a
spawned worker process (``ktrdr.worker.child``). One process per run: a run never inherits
torch threads, seeds or memory from an earlier one. To keep start-up (a fresh interpreter
importing torch, pandas and TA-Lib takes seconds) off the user's wait, a ``SparePool`` keeps
a worker started ahead of time, already past its imports, and starts the next one when a
run ends.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.errors import TrainingCancelled, WorkerDied
from ktrdr.worker.budget import THREAD_VARIABLES
from ktrdr.worker.entry import WorkerOutcome, WorkerRequest

if TYPE_CHECKING:
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.training.executor import TrainingResult
    from ktrdr.training.progress import ProgressCallback

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often the driver looks at the cancellation token while waiting
CANCEL_GRACE_S = 10.0  # a worker that ignores a cancel this long is killed
STOP_GRACE_S = 5.0
SPARE_DELAY_S = 2.0  # idle this long before a spare starts (a service stopping now needs none)


class WorkerCrashed(RuntimeError):
    """The worker raised something that is not a library error (a bug: INTERNAL)."""


class WorkerProcess:
    """One spawned worker (``python -m ktrdr.worker.child``) and the service's pipe ends.

    A fresh interpreter, not a fork of this one (which has gRPC and asyncio threads) and not
    ``multiprocessing``'s spawn (which re-imports the caller's ``__main__``: a notebook or a
    script without a main guard would run again in the worker).
    """

    def __init__(self, threads: int) -> None:
        events_r, events_w = os.pipe()
        control_r, control_w = os.pipe()
        env = dict(os.environ)
        env.update({name: str(threads) for name in THREAD_VARIABLES})
        level = logging.getLogger().getEffectiveLevel()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ktrdr.worker.child",
                    str(threads),
                    str(events_w),
                    str(control_r),
                    str(level),
                ],
                pass_fds=(events_w, control_r),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in (events_r, control_w):
                os.close(fd)
            raise
        finally:
            os.close(events_w)  # the service keeps only its own ends, so EOF means "gone"
            os.close(control_r)
        self.events = Connection(events_r, writable=False)
        self.control = Connection(control_w, readable=False)
        self.threads = threads

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: tuple[Any, ...]) -> bool:
        try:
            self.control.send(message)
            return True
        except (BrokenPipeError, EOFError, OSError):
            return False

    def _reap(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self._reap(STOP_GRACE_S)

    def stop(self) -> None:
        """Close the control pipe (the worker then exits) and reap it; kill if it lingers."""
        if not self.control.closed:
            self.control.close()
        if not self._reap(STOP_GRACE_S):
            logger.warning("training worker %d did not exit; killing it", self.pid)
            self.kill()
        if not self.events.closed:
            self.events.close()

    def release(self) -> None:
        """``stop`` in the background: the run's answer need not wait for the interpreter
        to tear down (seconds with torch loaded)."""
        threading.Thread(target=self.stop, name=f"reap-worker-{self.pid}", daemon=True).start()

    def death(self) -> WorkerDied:
        """What to tell the user about a worker that went away without an answer."""
        self._reap(STOP_GRACE_S)
        code = self.process.returncode
        if code is not None and code < 0:
            how = f"killed by {_signal_name(-code)}"
            if -code == signal.SIGKILL:
                how += " (by an operator, or by the kernel when memory ran out)"
        elif code is None:
            how = "its pipe closed while it was still running"
        else:
            how = f"it exited with status {code}"
        return WorkerDied(
            f"the training worker process (pid {self.pid}) died before finishing: {how}; "
            "no model was produced"
        )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class SparePool:
    """Workers started ahead of time with one thread budget (``spares`` of them, 0 = none)."""

    def __init__(self, threads: int, spares: int = 1, delay_s: float = SPARE_DELAY_S) -> None:
        self.threads = threads
        self.spares = spares
        self.delay_s = delay_s
        self._idle: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._closed = False
        self._active = 0  # runs using a worker taken from this pool
        self._timer: threading.Timer | None = None

    def take(self) -> WorkerProcess:
        """A started worker for a run: a live spare when there is one, else a new process.
        Pair with ``finished()`` when the run ends."""
        with self._lock:
            self._active += 1
            while self._idle:
                worker = self._idle.pop(0)
                if worker.alive():
                    return worker
                worker.stop()
        return WorkerProcess(self.threads)

    def finished(self) -> None:
        """A run ended; once none has run for ``delay_s``, start the spares for the next ones
        (a spare importing torch beside a running training would slow it down)."""
        with self._lock:
            self._active = max(0, self._active - 1)
            if self._active or self._closed or not self.spares:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay_s, self._refill_if_idle)
            self._timer.daemon = True
            self._timer.start()

    def _refill_if_idle(self) -> None:
        with self._lock:
            if self._active:
                return
        self.refill()

    def refill(self) -> None:
        """Start spares up to ``spares`` (returns at once; they import in the background)."""
        with self._lock:
            if self._closed:
                return
            while len(self._idle) < self.spares:
                self._idle.append(WorkerProcess(self.threads))

    def close(self) -> None:
        """Stop every spare (running workers end with their runs)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if self._timer is not None:
                self._timer.cancel()
        for worker in idle:
            worker.kill()  # a spare holds no work


class ProcessExecutor:
    """Runs each training in a worker process; same ``run`` as ``TrainingExecutor``."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        device: str = "auto",
        max_batch_events_per_s: float = 4.0,
        pool: SparePool | None = None,
        threads: int = 1,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.device_request = device
        self.max_batch_events_per_s = max_batch_events_per_s
        self.pool = pool or SparePool(threads, spares=0)
        self.cancel_grace_s = cancel_grace_s
        self.last_pid = 0  # the worker of the latest run (for operators and tests)

    def run(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        """Train in a worker; raises ``TrainingCancelled``, ``TrainingError`` or ``WorkerDied``."""
        return self.run_outcome(strategy, progress, cancel, strategy_yaml=strategy_yaml).to_result()

    def run_outcome(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> WorkerOutcome:
        """``run`` without decoding the bundle: the archive bytes and numbers."""
        request = WorkerRequest(
            config=strategy,
            data_dir=str(self.data_dir),
            device=self.device_request,
            strategy_yaml=strategy_yaml,
            max_batch_events_per_s=self.max_batch_events_per_s,
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
        worker = self.pool.take()
        self.last_pid = worker.pid
        try:
            if not worker.send(("run", request)):
                raise worker.death()
            return self._drive(worker, progress, cancel)
        finally:
            worker.release()
            self.pool.finished()

    def _drive(
        self,
        worker: WorkerProcess,
        progress: ProgressCallback | None,
        cancel: CancellationToken | None,
    ) -> WorkerOutcome:
        cancelled_at: float | None = None
        started = False  # the worker has begun the run (it said "ready" or reported)
        while True:
            if cancel is not None and cancel.is_cancelled() and cancelled_at is None:
                if not started:  # still importing: nothing to keep, stop it at once
                    worker.kill()
                    raise TrainingCancelled(cancel.reason or "cancelled")
                worker.send(("cancel", cancel.reason or "cancelled"))
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > self.cancel_grace_s:
                worker.kill()
                raise TrainingCancelled(
                    f"{cancel.reason if cancel else 'cancelled'} (the worker did not stop within "
                    f"{self.cancel_grace_s:.0f} s and was killed)"
                )
            try:
                if not worker.events.poll(POLL_S):
                    continue
                message = worker.events.recv()
            except (EOFError, OSError):
                raise worker.death() from None
            kind = message[0]
            started = True
            if kind == "progress":
                if progress is not None:
                    progress(message[1])
            elif kind == "result":
                outcome: WorkerOutcome = message[1]
                return outcome
            elif kind == "cancelled":
                raise TrainingCancelled(message[1])
            elif kind == "error":
                raise message[1]
            elif kind == "crash":
                raise WorkerCrashed(message[1])
            # "ready" (a fresh worker finished its imports): nothing to do
