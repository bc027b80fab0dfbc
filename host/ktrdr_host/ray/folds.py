"""Walk-forward folds as Ray tasks: the fold map a Ray session's task gives the executor.

The session task (``train_on_node``) trains the final model itself, then hands the K folds
to ``RayFoldMap``: what they share (the library's ``FoldWork``: the strategy, the dataset, the
fold splits) goes into the object store once, each fold becomes one Ray task asking what a
session asks (``ray_cpus_per_session``, its GPUs for a CUDA session), and the results come
back in fold order, the same numbers as sequential folds (each fold seeds its own model and
trainer, with the session's torch thread count).

While it waits the session task is blocked in ``ray.wait``, and Ray gives a blocked task's
CPUs back to its node: the folds can run on the session's own CPUs, so a cluster whose every
CPU holds a session still makes progress, and no more trainings run at once than CPUs allow.
A cancel of the session cancels every fold task still queued or running; a fold that fails
fails the session, its message naming the fold.

May import Ray (only imported in Ray mode), the training library lazily, and the standard
library.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

if TYPE_CHECKING:
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.training.walk_forward import FoldEvents, FoldResult, FoldWork

logger = logging.getLogger(__name__)

POLL_S = 0.2  # how often the waiting session task looks at its cancellation token


@dataclass(frozen=True)
class FoldResources:
    """What each fold task asks of the cluster: a session's share, the session's threads."""

    num_cpus: float
    num_gpus: float
    max_retries: int  # a fold whose worker or node died is trained again this often
    threads: int  # torch threads in the fold task (the session task's, for equal results)


def train_fold(work: FoldWork, number: int, threads: int) -> tuple[str, Any]:
    """The Ray task: train fold ``number`` of ``work``; the outcome as a message, as
    ``train_on_node`` returns it, so Ray retries only a fold whose worker died."""
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.worker.budget import apply_torch_threads, set_thread_environment
    from ktrdr_host.ray.task import failure_message

    set_thread_environment(threads)
    apply_torch_threads(threads)
    try:
        result = work.train(number, None, CancellationToken())
    except KeyboardInterrupt:  # ray.cancel of a running task
        return ("cancelled", "the fold task was cancelled")
    except BaseException as exc:
        return failure_message(exc)
    context = ray.get_runtime_context()
    where = {
        "fold": number,
        "task_id": context.get_task_id(),
        "node": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
    }
    return ("result", replace(result, ran_on=where))


@functools.cache
def _remote() -> Any:
    """``train_fold`` as a Ray remote function (made once per process)."""
    return ray.remote(train_fold)


class RayFoldMap:
    """Trains each fold as its own Ray task (the library's ``FoldMap``)."""

    def __init__(self, resources: FoldResources) -> None:
        self.resources = resources

    def __call__(
        self, work: FoldWork, events: FoldEvents, cancel: CancellationToken
    ) -> list[FoldResult]:
        from ktrdr.errors import TrainingCancelled

        res = self.resources
        session_task = ray.get_runtime_context().get_task_id()
        shared = ray.put(work)  # once: every fold task reads the same copy
        numbers: dict[Any, int] = {}
        for number in range(1, work.folds + 1):
            ref = (
                _remote()
                .options(
                    num_cpus=res.num_cpus,
                    num_gpus=res.num_gpus,
                    max_retries=res.max_retries,
                    retry_exceptions=False,
                    name=f"ktrdr-fold-{number}-of-{work.folds}",
                )
                .remote(shared, number, res.threads)
            )
            numbers[ref] = number
            events.started(number, 0, " (a Ray task)")
        results: dict[int, FoldResult] = {}
        pending = list(numbers)
        try:
            while pending:
                if cancel.is_cancelled():
                    raise TrainingCancelled(
                        f"{cancel.reason} (walk-forward: {len(pending)} of {work.folds} fold "
                        "task(s) still queued or running were cancelled)"
                    )
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    number = numbers[ref]
                    result = self._result(ref, work.label(number))
                    where = {**result.ran_on, "session_task_id": session_task}
                    results[number] = replace(result, ran_on=where)
                    events.finished(number, len(results), results[number])
        finally:
            for ref in pending:  # a cancel, or a fold that failed: the others stop too
                ray.cancel(ref)
        return [results[n] for n in sorted(results)]

    def _result(self, ref: Any, label: str) -> FoldResult:
        from ray import exceptions as rex

        from ktrdr.errors import TrainingCancelled, WorkerDied
        from ktrdr.worker.process import WorkerCrashed

        try:
            kind, payload = ray.get(ref)
        except rex.TaskCancelledError:
            raise TrainingCancelled(f"{label}: its Ray task was cancelled") from None
        except rex.RayTaskError as exc:
            raise WorkerCrashed(f"{label}: its Ray task failed: {exc}") from None
        except rex.RayError as exc:
            retries = self.resources.max_retries
            raise WorkerDied(
                f"the Ray worker training {label} died before finishing "
                f"({type(exc).__name__}); tried {retries + 1} time(s) "
                f"(KTRDR_HOST_RAY_TASK_RETRIES={retries}); no model was produced"
            ) from None
        return fold_outcome(kind, payload, label)


def fold_outcome(kind: str, payload: Any, label: str) -> FoldResult:
    """A fold task's message (as ``train_fold`` returns it): its result, or the error that
    fails the session, of the same kind as the fold's and naming the fold (``label``)."""
    from ktrdr.errors import TrainingCancelled, TrainingError
    from ktrdr.worker.process import WorkerCrashed

    if kind == "result":
        result: FoldResult = payload
        return result
    if kind == "cancelled":
        raise TrainingCancelled(f"{label}: {payload}")
    if kind == "error" and isinstance(payload, TrainingError):
        raise type(payload)(f"{label}: {payload}") from payload
    raise WorkerCrashed(f"{label} crashed: {payload}")


__all__ = ["FoldResources", "RayFoldMap", "fold_outcome", "train_fold"]
