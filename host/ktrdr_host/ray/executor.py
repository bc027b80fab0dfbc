"""``RayExecutor``: one session trained as a Ray task, with ``ProcessExecutor``'s ``run``.

The session registry drives it exactly like a ``ProcessExecutor`` (``ExecutorRun`` calls
``run`` in a thread with a progress callback and a cancellation token and gets a
``TrainingResult``), so streaming, the spool, SubmitResults delivery and the session RPCs
are the same in both modes. What differs is here:

- the market data the strategy needs is read on the host and put into Ray's object store
  (the worker writes it to a private temporary directory), unless the operator names a
  shared data directory (``ray_shared_data_dir``);
- the task (``ray_task.train_on_node``) asks for ``ray_cpus_per_session`` CPUs (and GPUs for
  a CUDA session); until a node has them the session is QUEUED, which the session's state
  and a progress event show;
- progress comes from the host's relay actor every ``POLL_S``, in the order the worker
  reported it; the host numbers it and adds heartbeats as for a worker process;
- a cancel goes to the relay, which the worker hears within its report interval; a queued
  session is simply withdrawn, and a worker that ignores a cancel for ``CANCEL_GRACE_S``
  is killed (``ray.cancel(force=True)``);
- a worker or node that dies is retried by Ray (``ray_task_retries``), after which the
  session fails with ``WorkerDied`` naming the node; a cluster that stays unreachable for
  ``ray_lost_after_s`` fails it too, so a session never stays RUNNING;
- the model comes back through the object store as the bundle's archive bytes;
- a walk-forward strategy's folds run as Ray tasks of their own (``ktrdr_host.ray.folds``),
  each asking the session's CPUs (and GPUs) while the session task waits for them.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr import tracing
from ktrdr.errors import DataError, TrainingCancelled, WorkerDied
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.worker.entry import WorkerOutcome, WorkerRequest
from ktrdr.worker.process import WorkerCrashed

if TYPE_CHECKING:
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.training.executor import TrainingResult
    from ktrdr.training.progress import ProgressCallback
    from ktrdr_host.ray.cluster import RayCluster

logger = logging.getLogger(__name__)

POLL_S = 0.2  # how often the host takes the relay's events and looks at the cancel token
CANCEL_GRACE_S = 10.0  # a worker that ignores a cancel this long is killed
RELAY_TIMEOUT_S = 5.0

# (state, node label): "queued" with "", "running" with the node's label
PlacementListener = Callable[[str, str], None]


@functools.cache
def _remote_task() -> Any:
    """``train_on_node`` as a Ray remote function (made once per process)."""
    import ray

    from ktrdr_host.ray.task import train_on_node

    return ray.remote(train_on_node)


class RayExecutor:
    """Trains one session on the host's Ray cluster; same ``run`` as ``TrainingExecutor``."""

    def __init__(self, cluster: RayCluster, device: str) -> None:
        self.cluster = cluster
        self.device_request = device
        self.listener: PlacementListener | None = None
        self.node_label = ""  # the node the latest attempt ran on
        self.cancel_grace_s = CANCEL_GRACE_S

    def run(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        """Train on the cluster; raises ``TrainingCancelled``, ``TrainingError``, ``WorkerDied``."""
        return self.run_outcome(strategy, progress, cancel, strategy_yaml=strategy_yaml).to_result()

    def run_outcome(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> WorkerOutcome:
        import ray

        from ktrdr_host.ray.folds import FoldResources

        settings = self.cluster.settings
        if cancel is not None:
            cancel.raise_if_cancelled()
        data_dir, files = self._market_data(strategy)
        request = WorkerRequest(
            config=strategy,
            data_dir=data_dir,
            device=self.device_request,
            strategy_yaml=strategy_yaml,
            max_batch_events_per_s=settings.max_batch_events_per_s,
            **tracing.for_worker(),  # the worker's spans join this trace
        )
        cpus = settings.ray_cpus_per_session
        gpus = settings.ray_gpus_per_session if self.device_request.startswith("cuda") else 0
        key = uuid.uuid4().hex
        threads = max(1, math.floor(cpus))
        # each walk-forward fold: a Ray task of its own, asking what the session asks
        folds = FoldResources(cpus, gpus, settings.ray_task_retries, threads)
        data_ref = ray.put(files) if files is not None else None
        ref = (
            _remote_task()
            .options(
                num_cpus=cpus,
                num_gpus=gpus,
                max_retries=settings.ray_task_retries,
                retry_exceptions=False,
                name=f"ktrdr-session-{strategy.name}",
            )
            .remote(request, data_ref, self.cluster.relay, key, threads, folds)
        )
        try:
            return self._drive(ref, key, progress, cancel)
        finally:
            self.cluster.relay.forget.remote(key)

    # -- market data ---------------------------------------------------------------------
    def _market_data(self, strategy: StrategyConfig) -> tuple[str, dict[str, bytes] | None]:
        """The data directory the worker reads, and the files to ship (None: shared dir)."""
        from ktrdr.data.loader import data_files_for

        settings = self.cluster.settings
        if settings.ray_shared_data_dir is not None:
            return str(settings.ray_shared_data_dir), None
        symbols = strategy.training_data.symbols.resolved()
        files: dict[str, bytes] = {}
        total = 0
        for symbol in symbols:
            paths = data_files_for(settings.data_dir, symbol)
            if not paths:
                raise DataError(
                    f"no data file for {symbol} in the host's data directory (looked for "
                    f"{symbol}_<TIMEFRAME>.csv or .parquet)"
                )
            for path in paths:
                total += path.stat().st_size
                if total > settings.ray_max_data_bytes:
                    raise DataError(
                        f"the market data for {', '.join(symbols)} is larger than "
                        f"KTRDR_HOST_RAY_MAX_DATA_BYTES ({settings.ray_max_data_bytes} bytes); "
                        "raise it, or give the nodes a shared copy with "
                        "KTRDR_HOST_RAY_SHARED_DATA_DIR"
                    )
                files[Path(path).name] = path.read_bytes()
        return "", files

    # -- following the task --------------------------------------------------------------
    def _drive(
        self,
        ref: Any,
        key: str,
        progress: ProgressCallback | None,
        cancel: CancellationToken | None,
    ) -> WorkerOutcome:
        import ray

        tracker = _Placement(self, progress)
        tracker.queued()
        cancelled_at: float | None = None
        try:
            while True:
                if cancel is not None and cancel.is_cancelled() and cancelled_at is None:
                    reason = cancel.reason or "cancelled"
                    if not tracker.reported:  # queued, or the worker still imports: stop it now
                        ray.cancel(ref, force=True)
                        where = "before training began" if tracker.started else "while queued"
                        raise TrainingCancelled(f"{reason} ({where})")
                    self.cluster.relay.cancel.remote(key, reason)
                    cancelled_at = time.monotonic()
                    logger.info("cancel relayed to the worker on %s: %s", self.node_label, reason)
                waited = time.monotonic() - cancelled_at if cancelled_at is not None else 0.0
                if waited > self.cancel_grace_s:
                    ray.cancel(ref, force=True)
                    raise TrainingCancelled(
                        f"{cancel.reason if cancel else 'cancelled'} (the worker on "
                        f"{self.node_label} did not stop within {self.cancel_grace_s:.0f} s "
                        "and was killed)"
                    )
                ready, _ = ray.wait([ref], timeout=POLL_S)
                tracker.update(self._take(key))
                if ready:
                    break
                lost = self.cluster.unreachable_for()
                if lost > self.cluster.settings.ray_lost_after_s:
                    with _quiet():
                        ray.cancel(ref, force=True)
                    raise WorkerDied(
                        f"the Ray cluster at {self.cluster.address} has been unreachable for "
                        f"{lost:.0f} s while the session ran on "
                        f"{self.node_label or 'no node yet'}; "
                        "no model was produced"
                    )
            return self._outcome(ref, cancel)
        finally:
            tracker.finished()

    def _take(self, key: str) -> tuple[Any, list[ProgressEvent]]:
        import ray

        try:
            taken = self.cluster.relay.take.remote(key)
            placement, events = ray.get(taken, timeout=RELAY_TIMEOUT_S)
        except Exception as exc:  # the relay restarts after its node died: events resume
            logger.debug("progress relay unavailable: %s", exc)
            return None, []
        return placement, events

    def _outcome(self, ref: Any, cancel: CancellationToken | None) -> WorkerOutcome:
        import ray
        from ray import exceptions as rex

        try:
            kind, payload = ray.get(ref)
        except rex.TaskCancelledError:
            raise TrainingCancelled(cancel.reason if cancel else "cancelled") from None
        except rex.RayTaskError as exc:
            raise WorkerCrashed(f"the training task failed on {self.node_label}: {exc}") from None
        except rex.RayError as exc:
            retries = self.cluster.settings.ray_task_retries
            raise WorkerDied(
                f"the Ray worker training this session on {self.node_label or 'a node'} died "
                f"before finishing ({type(exc).__name__}: {_first_line(exc)}); "
                f"tried {retries + 1} time(s) (KTRDR_HOST_RAY_TASK_RETRIES={retries}); "
                "no model was produced"
            ) from None
        if kind == "result":
            outcome: WorkerOutcome = payload
            return outcome
        if kind == "cancelled":
            raise TrainingCancelled(str(payload))
        if kind == "error":
            raise payload
        raise WorkerCrashed(str(payload))


class _Placement:
    """Where a session stands (queued, on which node) and the events that say so."""

    def __init__(self, executor: RayExecutor, progress: ProgressCallback | None) -> None:
        self.executor = executor
        self.counts = executor.cluster.counts
        self.progress = progress
        self.node_id = ""
        self.attempt_id = ""
        self.attempts = 0
        self.started = False  # a worker took the session
        self.reported = False  # ... and has reported progress (it is past its imports)
        self._queued = False

    def _note(self, message: str) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(ProgressKind.HEARTBEAT, message=message))

    def _tell(self, state: str, label: str) -> None:
        if self.executor.listener is not None:
            self.executor.listener(state, label)

    def queued(self) -> None:
        self._queued = True
        self.counts.change(queued=1)
        self._tell("queued", "")
        self._note(
            f"queued: waiting for {self.executor.cluster.settings.ray_cpus_per_session:g} free "
            f"CPU(s) on the Ray cluster ({self.counts.total_running} session(s) running, "
            f"{self.counts.queued} queued)"
        )

    def update(self, taken: tuple[Any, list[ProgressEvent]]) -> None:
        placement, events = taken
        if placement is not None:
            node_id, node_ip, attempt_id = placement
            if attempt_id != self.attempt_id:
                self._moved(str(node_id), str(node_ip), str(attempt_id))
        if events:
            self.reported = True
        if self.progress is not None:
            for event in events:
                self.progress(event)

    def _moved(self, node_id: str, node_ip: str, attempt_id: str) -> None:
        label = f"{node_ip} (node {node_id[:12]})"
        previous = self.executor.node_label
        if self._queued:
            self._queued = False
            self.counts.change(queued=-1)
        if self.node_id:
            self.counts.change(node=self.node_id, running=-1)
        self.counts.change(node=node_id, running=1)
        self.node_id, self.attempt_id, self.started = node_id, attempt_id, True
        self.attempts += 1
        self.reported = False  # a new worker: past its imports once it reports
        self.executor.node_label = label
        self._tell("running", label)
        if self.attempts > 1:
            self._note(
                f"the worker on {previous} was lost; training again on {label} "
                f"(attempt {self.attempts})"
            )
        else:
            self._note(f"training on Ray node {label}")

    def finished(self) -> None:
        if self._queued:
            self.counts.change(queued=-1)
        if self.node_id:
            self.counts.change(node=self.node_id, running=-1)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["PlacementListener", "RayExecutor"]
