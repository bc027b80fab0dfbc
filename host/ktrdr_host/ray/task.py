"""The cluster's side of a Ray session: the task body and the host's progress relay actor.

``train_on_node`` runs in a Ray worker on any node of the cluster. It writes the market data
it was sent (through the object store) into a private temporary directory, unless the
operator named a shared data directory, then calls the one worker-side entry point,
``ktrdr.worker.run_request``, exactly as a host's worker process does. Progress events are
buffered and handed to the host's ``ProgressRelay`` actor every ``REPORT_INTERVAL_S``; the
relay's answer carries a cancel request, which sets the run's cancellation token (so a
cancel lands within ``REPORT_INTERVAL_S`` plus the executor's own checking interval).

The task returns its outcome as a tuple instead of raising a library error, so that Ray's
retries (``max_retries``) only ever repeat a task whose worker or node died, never one
whose strategy failed. Messages: ``("result", WorkerOutcome)``, ``("cancelled", reason)``,
``("error", TrainingError)``, ``("crash", text)``. A walk-forward strategy's folds run as
further Ray tasks (``ktrdr_host.ray.folds``).

May import Ray (this module is only imported in Ray mode), the training library lazily, and
the standard library.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from ktrdr_host.ray.folds import FoldResources, RayFoldMap

if TYPE_CHECKING:
    from ktrdr.training.progress import ProgressEvent
    from ktrdr.worker.entry import WorkerRequest

logger = logging.getLogger(__name__)

REPORT_INTERVAL_S = 0.25  # the worker hands its events to the relay (and hears a cancel) this often
RELAY_LOST_S = 15.0  # a relay (the host) unreachable this long cancels the run
BUFFER_LIMIT = 1024  # events kept per session between two polls (batch events dropped first)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ProgressRelay:
    """Per-host mailbox between running tasks and the host: progress up, cancel down.

    Keyed by a session key that is unique per host; every method is a quick dict operation,
    so the actor's one thread serves many sessions. Bounded: each session keeps at most
    ``BUFFER_LIMIT`` events, dropping the oldest batch events first.
    """

    def __init__(self) -> None:
        self._events: dict[str, deque[Any]] = {}
        self._cancel: dict[str, str] = {}
        self._placement: dict[str, tuple[str, str, str]] = {}  # node id, node ip, attempt id

    def report(self, key: str, node: tuple[str, str, str], events: list[Any]) -> str | None:
        """From a task: where it runs and its new events; returns a cancel reason, if any."""
        self._placement[key] = node
        queue = self._events.setdefault(key, deque())
        for event in events:
            if len(queue) >= BUFFER_LIMIT:
                _drop_one(queue)
            queue.append(event)
        return self._cancel.get(key)

    def take(self, key: str) -> tuple[tuple[str, str, str] | None, list[Any]]:
        """From the host: where the session runs (None while queued) and its new events."""
        queue = self._events.get(key)
        events = list(queue) if queue else []
        if queue:
            queue.clear()
        return self._placement.get(key), events

    def cancel(self, key: str, reason: str) -> None:
        self._cancel.setdefault(key, reason)

    def forget(self, key: str) -> None:
        self._events.pop(key, None)
        self._cancel.pop(key, None)
        self._placement.pop(key, None)


def _drop_one(queue: deque[Any]) -> None:
    for index, event in enumerate(queue):
        if getattr(event, "kind", None) == "batch":
            del queue[index]
            return
    queue.popleft()


class _Reporter:
    """The task's side of the relay: buffer events, flush them, turn a cancel into the token."""

    def __init__(self, relay: Any, key: str, token: Any) -> None:
        context = ray.get_runtime_context()
        node_id = context.get_node_id()
        # a fresh id per attempt: a retry on the same node is still told apart
        self.node = (node_id, ray.util.get_node_ip_address(), uuid.uuid4().hex)
        self.relay = relay
        self.key = key
        self.token = token
        self._buffer: list[ProgressEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_contact = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"relay-{key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self._buffer.append(event)

    def flush(self) -> None:
        with self._lock:
            events, self._buffer = self._buffer, []
        try:
            reason = ray.get(self.relay.report.remote(self.key, self.node, events), timeout=5.0)
        except Exception as exc:  # the relay's node or the host is gone
            with self._lock:
                self._buffer[:0] = events[-BUFFER_LIMIT:]
            if time.monotonic() - self._last_contact > RELAY_LOST_S:
                self.token.cancel(f"the host's progress relay is unreachable ({exc})")
            return
        self._last_contact = time.monotonic()
        if reason and not self.token.is_cancelled():
            logger.warning("session %s: cancel received: %s", self.key, reason)
            self.token.cancel(reason)

    def _loop(self) -> None:
        # Every call to the relay happens on this thread: a task's main thread blocked in
        # ray.get gives its CPUs back to the node, which would let another session start
        # beside this one on a full node.
        self.flush()  # tells the host at once that the session left the queue
        while not self._stop.wait(REPORT_INTERVAL_S):
            self.flush()
        self.flush()  # the last events before the outcome

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)


def train_on_node(
    request: WorkerRequest,
    data_files: dict[str, bytes] | None,
    relay: Any,
    key: str,
    threads: int,
    folds: FoldResources | None = None,
) -> tuple[str, Any]:
    """The Ray task: train ``request`` on this node and return its outcome as a message.

    ``folds``: what each walk-forward fold's own Ray task asks (None: the folds train one
    after another in this task)."""
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.worker.budget import apply_torch_threads, set_thread_environment
    from ktrdr.worker.entry import run_request

    set_thread_environment(threads)
    apply_torch_threads(threads)
    token = CancellationToken()
    reporter = _Reporter(relay, key, token)
    reporter.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ktrdr-ray-data-") as scratch:
            if data_files is not None:
                for name, content in data_files.items():
                    (Path(scratch) / Path(name).name).write_bytes(content)
                request = replace(request, data_dir=scratch)
            fold_map = RayFoldMap(folds) if folds is not None else None
            outcome = run_request(request, reporter, token, fold_map=fold_map)
    except BaseException as exc:  # everything leaves as a message, never as a traceback
        return failure_message(exc)
    finally:
        reporter.stop()
    return ("result", outcome)


def failure_message(exc: BaseException) -> tuple[str, Any]:
    from ktrdr.errors import TrainingCancelled, TrainingError

    if isinstance(exc, TrainingCancelled):
        return ("cancelled", str(exc))
    if isinstance(exc, TrainingError):
        return ("error", exc)
    logger.error("training crashed:\n%s", "".join(traceback.format_exception(exc)))
    return ("crash", f"{type(exc).__name__}: {exc}")


__all__ = ["ProgressRelay", "failure_message", "train_on_node"]
