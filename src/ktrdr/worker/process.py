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
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from ktrdr import tracing
from ktrdr.errors import TrainingCancelled
from ktrdr.worker import forkserver
from ktrdr.worker.budget import THREAD_VARIABLES
from ktrdr.worker.entry import WorkerOutcome, WorkerRequest
from ktrdr.worker.forkserver import ForkedWorker, Forkserver, ForkserverGone
from ktrdr.worker.handle import WorkerHandle

if TYPE_CHECKING:
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.training.executor import TrainingResult
    from ktrdr.training.progress import ProgressCallback

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often the driver looks at the cancellation token while waiting
CANCEL_GRACE_S = 10.0  # a worker that ignores a cancel this long is killed
SPARE_DELAY_S = 2.0  # idle this long before a spare starts (a service stopping now needs none)
FORKSERVER_READY_S = 300.0  # a run waits this long for the forkserver's imports at most


class WorkerCrashed(RuntimeError):
    """The worker raised something that is not a library error (a bug: INTERNAL)."""


class WorkerProcess(WorkerHandle):
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

    def _wait_exit(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _send_kill(self) -> None:
        self.process.kill()

    def _exit_code(self) -> int | None:
        return self.process.returncode


class SparePool:
    """Where runs get their workers, all with one thread budget.

    Warm (``spares`` > 0, on Linux): a ``Forkserver`` started on the first run (or by
    ``refill``) imports once, and every run after it gets a worker forked from it in
    milliseconds; the first run waits for its imports rather than start a second cold
    interpreter beside it. Without a forkserver (``spares`` = 0, ``forkserver=False``, or one
    that failed): ``spares`` workers spawned ahead of time, started once the pool has been
    idle for ``delay_s``, else a cold worker per run.
    """

    def __init__(
        self,
        threads: int,
        spares: int = 1,
        delay_s: float = SPARE_DELAY_S,
        *,
        forkserver: bool | None = None,
        ready_timeout_s: float = FORKSERVER_READY_S,
    ) -> None:
        self.threads = threads
        self.spares = spares
        self.delay_s = delay_s
        self.warm = (spares > 0 and _forkserver_supported()) if forkserver is None else forkserver
        self.ready_timeout_s = ready_timeout_s
        self._server: Forkserver | None = None
        self._idle: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._closed = False
        self._active = 0  # runs using a worker taken from this pool
        self._timer: threading.Timer | None = None

    def take(self, cancel: CancellationToken | None = None) -> WorkerHandle:
        """A started worker for a run: forked from the forkserver, a live spare, or a new
        process. Pair with ``finished()`` when the run ends. Raises ``TrainingCancelled``
        when ``cancel`` fires while the forkserver is still importing."""
        with self._lock:
            self._active += 1
        try:
            if self.warm:
                worker = self._fork(cancel)
                if worker is not None:
                    return worker
            with self._lock:
                while self._idle:
                    spare = self._idle.pop(0)
                    if spare.alive():
                        return spare
                    spare.stop()
            return WorkerProcess(self.threads)
        except BaseException:
            self.finished()
            raise

    def _fork(self, cancel: CancellationToken | None) -> ForkedWorker | None:
        """A worker from the forkserver (started if need be); None to fall back to a cold
        worker (no forkserver could be started, or it died)."""
        server = self._forkserver()
        if server is None:
            return None
        deadline = time.monotonic() + self.ready_timeout_s
        try:
            while not server.wait_ready(POLL_S):
                if cancel is not None and cancel.is_cancelled():
                    raise TrainingCancelled(cancel.reason or "cancelled")
                if not server.alive():
                    raise ForkserverGone("the warm-worker forkserver exited while starting")
                if time.monotonic() > deadline:
                    logger.warning(
                        "warm workers: the forkserver is not ready after %.0f s; this run "
                        "starts a worker of its own",
                        self.ready_timeout_s,
                    )
                    return None
            return server.fork()
        except ForkserverGone as exc:
            logger.warning("warm workers: %s; starting a new one for the next run", exc)
            with self._lock:
                if self._server is server:
                    self._server = None
            server.close()
            return None

    def _forkserver(self) -> Forkserver | None:
        with self._lock:
            if self._closed:
                return None
            if self._server is not None and not self._server.alive():
                self._server.close()
                self._server = None
            if self._server is None:
                try:
                    self._server = Forkserver(self.threads)
                except OSError as exc:
                    logger.warning("warm workers: no forkserver could be started: %s", exc)
                    self.warm = False
                    return None
            return self._server

    def finished(self) -> None:
        """A run ended; without a forkserver, once none has run for ``delay_s``, start the
        spares for the next ones (a spare importing torch beside a running training would
        slow it down)."""
        with self._lock:
            self._active = max(0, self._active - 1)
            if self._active or self._closed or not self.spares or self.warm:
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
        """Start the forkserver, or spares up to ``spares`` (returns at once; they import in
        the background)."""
        if self.warm:
            self._forkserver()
            return
        with self._lock:
            if self._closed:
                return
            while len(self._idle) < self.spares:
                self._idle.append(WorkerProcess(self.threads))

    def preload(self) -> str:
        """Start the forkserver (or the spares) now, before any run; returns what started, for
        the service's log. Its imports go on in the background."""
        if not self.warm and not self.spares:
            return "none (worker spares 0: each run starts a worker of its own)"
        self.refill()
        with self._lock:
            server = self._server
        if server is not None:
            return f"forkserver pid {server.process.pid} importing the training stack"
        return f"{len(self._idle)} spare worker(s) importing the training stack"

    @property
    def forkserver_pid(self) -> int | None:
        """The running forkserver's pid (None: not started, or without one)."""
        with self._lock:
            server = self._server
        return server.process.pid if server is not None and server.alive() else None

    def wait_ready(self, timeout: float) -> bool:
        """Whether the forkserver finished its imports within ``timeout`` (False: none)."""
        with self._lock:
            server = self._server
        return server is not None and server.wait_ready(timeout)

    def close(self) -> None:
        """Stop the forkserver and every spare (running workers end with their runs)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            server, self._server = self._server, None
            if self._timer is not None:
                self._timer.cancel()
        for worker in idle:
            worker.kill()  # a spare holds no work
        if server is not None:
            server.close()


def _forkserver_supported() -> bool:
    return forkserver.supported() and os.environ.get("KTRDR_WARM_WORKERS", "1") != "0"


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
            **tracing.for_worker(),  # the worker's spans join this trace
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
        worker = self.pool.take(cancel)
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
        worker: WorkerHandle,
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
