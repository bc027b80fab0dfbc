"""Ctrl-C as a request to stop a blocking call, not an exception raised at a random point.

    with CtrlC() as ctrl_c:
        op = client.create_training(...)          # Ctrl-C here: the call still returns the id
        if ctrl_c.interrupted: ...                # then cancel the operation
        client.watch(op.operation_id, interrupt=ctrl_c)   # Ctrl-C here: stream cancelled

Python's own SIGINT handling raises ``KeyboardInterrupt`` wherever the main thread happens
to be (inside gRPC, between a call returning and its result being used), and a process that
inherited SIGINT as *ignored* (a background job of a non-interactive shell, e.g. ``make test
&``) never gets one at all: Python only installs its handler when SIGINT is at its default.
``CtrlC`` installs its own handler for the ``with`` block whatever was inherited, and restores
the previous disposition on exit.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

log = logging.getLogger(__name__)


class CtrlC:
    """While active (main thread only), the first SIGINT sets ``interrupted`` and runs the
    ``on_interrupt`` callbacks on a watcher thread; a second SIGINT raises KeyboardInterrupt.

    The signal handler takes no lock (it only writes a flag and puts on a ``SimpleQueue``,
    which is reentrant), so it cannot deadlock with the code it interrupts; callbacks such as
    ``grpc.Call.cancel`` or ``CancellationToken.cancel`` run on the watcher thread.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._signals = 0
        self._queue: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._fired = False
        self._callbacks: list[Callable[[], object]] = []
        self._previous: object = None
        self._installed = False
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set in the main thread
        self._watcher = threading.Thread(target=self._watch, name="ctrl-c", daemon=True)
        self._watcher.start()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._installed = False
        if self._watcher is not None:
            self._queue.put(False)
            self._watcher.join(timeout=5)
            self._watcher = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt
        self.interrupted = True
        self._queue.put(True)

    def _watch(self) -> None:
        while self._queue.get():
            with self._lock:
                self._fired = True
                callbacks = list(self._callbacks)
            for callback in callbacks:
                self._run(callback)

    @staticmethod
    def _run(callback: Callable[[], object]) -> None:
        try:
            callback()
        except Exception:  # a failed cancel must not stop the others
            log.exception("Ctrl-C callback %r failed", callback)

    def on_interrupt(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` on Ctrl-C (at once if it already came); returns its remover."""
        with self._lock:
            fired = self._fired
            if not fired:
                self._callbacks.append(callback)
        if fired:
            self._run(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove


__all__ = ["CtrlC"]
