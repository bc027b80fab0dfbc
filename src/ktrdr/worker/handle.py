"""``WorkerHandle``: what a run holds of its worker process, however the worker was started.

Both kinds of worker (``WorkerProcess``, a spawned interpreter, and ``ForkedWorker``, forked
by the pool's forkserver) talk to the service over the same two pipes and stop the same way:
closing the control pipe asks the worker to exit, a worker that lingers is killed, and a
worker that went away without an answer is described to the user by how it ended. Only how
the process is watched differs (a ``Popen`` or a pidfd), which the subclasses provide.
"""

from __future__ import annotations

import logging
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from ktrdr.errors import WorkerDied

logger = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # a worker asked to exit (or killed) gets this long to go


class WorkerHandle:
    """The service's ends of one worker's pipes, and its process's life and death."""

    events: Connection  # the worker's progress and answer
    control: Connection  # the request and cancels; closing it asks the worker to exit
    threads: int

    # -- provided by each kind of worker ---------------------------------------------------
    @property
    def pid(self) -> int:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def _wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to end (and be reaped); True once ended."""
        raise NotImplementedError

    def _send_kill(self) -> None:
        raise NotImplementedError

    def _exit_code(self) -> int | None:
        """How the process ended, as ``Popen.returncode`` (None when unknown)."""
        raise NotImplementedError

    def _close_process_handle(self) -> None:
        """Release what watches the process (once it has ended); nothing by default."""

    # -- shared ----------------------------------------------------------------------------
    def send(self, message: tuple[Any, ...]) -> bool:
        try:
            self.control.send(message)
            return True
        except (BrokenPipeError, EOFError, OSError):
            return False

    def kill(self) -> None:
        if self.alive():
            self._send_kill()
        self._wait_exit(STOP_GRACE_S)

    def stop(self) -> None:
        """Close the control pipe (the worker then exits) and reap it; kill it if it lingers."""
        if not self.control.closed:
            self.control.close()
        if not self._wait_exit(STOP_GRACE_S):
            logger.warning("training worker %d did not exit; killing it", self.pid)
            self.kill()
        if not self.events.closed:
            self.events.close()
        self._close_process_handle()

    def release(self) -> None:
        """``stop`` in the background: the run's answer need not wait for the interpreter
        to tear down (seconds with torch loaded)."""
        threading.Thread(target=self.stop, name=f"reap-worker-{self.pid}", daemon=True).start()

    def death(self) -> WorkerDied:
        """What to tell the user about a worker that went away without an answer."""
        self._wait_exit(STOP_GRACE_S)
        return worker_died(self.pid, self._exit_code())


def worker_died(pid: int, code: int | None) -> WorkerDied:
    """The error of a worker that ended without an answer (``code`` as ``Popen.returncode``)."""
    if code is not None and code < 0:
        how = f"killed by {_signal_name(-code)}"
        if -code == signal.SIGKILL:
            how += " (by an operator, or by the kernel when memory ran out)"
    elif code is None:
        how = "its pipe closed while it was still running"
    else:
        how = f"it exited with status {code}"
    return WorkerDied(
        f"the training worker process (pid {pid}) died before finishing: {how}; "
        "no model was produced"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
