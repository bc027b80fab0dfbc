"""The one worker-side entry point: a request in, the bundle's archive bytes out.

``run_request`` is what a worker process (and, later, a cluster task) calls: it builds the
library's ``TrainingExecutor`` from the request, runs it with the given progress callback
and cancellation token, and returns everything the service needs as plain data, the bundle
as its deterministic archive bytes, so nothing but bytes and numbers crosses the boundary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the serving side imports this module without the training stack
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.training.cancellation import CancellationToken
    from ktrdr.training.executor import TrainingResult
    from ktrdr.training.progress import ProgressCallback
    from ktrdr.training.walk_forward import FoldMap


WORKER_SERVICE = "ktrdr-worker"  # the worker's spans' service name unless OTEL_SERVICE_NAME


class TrainingRunner(Protocol):
    """What runs a training for a service: ``TrainingExecutor`` (in the caller's thread) or
    ``ProcessExecutor`` (in a worker process); both block until the run ends."""

    device_request: str

    def run(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult: ...


@dataclass(frozen=True)
class WorkerRequest:
    """Everything one training needs, in a form that crosses a process boundary."""

    config: StrategyConfig
    data_dir: str
    device: str = "auto"
    strategy_yaml: str | None = None
    max_batch_events_per_s: float = 4.0
    importance_repeats: int = 3
    # The service's trace context (W3C headers) and OTEL_* variables: the worker's spans join
    # the operation's trace. Empty when tracing is off.
    trace_context: dict[str, str] = field(default_factory=dict)
    trace_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerOutcome:
    """A finished training as plain data: the bundle archive and the headline numbers."""

    archive: bytes
    metrics: dict[str, Any]
    summary: dict[str, float]
    device: str
    duration_s: float
    step_times: dict[str, float] = field(default_factory=dict)
    threads: int = 0  # torch's intra-op threads in the process that trained
    cpu_s: float = 0.0  # CPU time (all threads) the process spent on the run, archive included

    def to_result(self) -> TrainingResult:
        """The library's ``TrainingResult`` (decodes the archive: imports torch)."""
        from ktrdr.storage.bundle import ModelBundle
        from ktrdr.training.result import TrainingResult

        return TrainingResult(
            bundle=ModelBundle.from_archive_bytes(self.archive),
            metrics=self.metrics,
            summary=self.summary,
            device=self.device,
            duration_s=self.duration_s,
            step_times=self.step_times,
        )


def run_request(
    request: WorkerRequest,
    progress: ProgressCallback | None = None,
    cancel: CancellationToken | None = None,
    *,
    fold_map: FoldMap | None = None,
    flush_traces: bool = True,
) -> WorkerOutcome:
    """Train as ``request`` says; raises ``TrainingCancelled`` or ``TrainingError``.

    With a trace context in the request, the run is a ``worker`` span (with a span per step)
    in the service's trace, exported before this returns (``flush_traces=False``: the caller
    calls ``tracing.flush()``). ``fold_map``: how walk-forward folds are trained (default:
    one after another here)."""
    from ktrdr import tracing

    with tracing.continued(
        "worker",
        request.trace_context,
        request.trace_env,
        default_service=WORKER_SERVICE,
        attributes={"ktrdr.strategy": request.config.name, "ktrdr.device": request.device},
        flush=flush_traces,
    ) as span:
        if span is None:
            return _run(request, progress, cancel, fold_map)
        from ktrdr.tracing.steps import StepSpans

        steps = StepSpans(progress)
        try:
            return _run(request, steps, cancel, fold_map)
        except BaseException as exc:
            steps.close(f"{type(exc).__name__}: {exc}")
            raise


def _run(
    request: WorkerRequest,
    progress: ProgressCallback | None,
    cancel: CancellationToken | None,
    fold_map: FoldMap | None,
) -> WorkerOutcome:
    import torch

    from ktrdr.training.executor import TrainingExecutor

    cpu_start = time.process_time()
    executor = TrainingExecutor(
        request.data_dir,
        device=request.device,
        max_batch_events_per_s=request.max_batch_events_per_s,
        importance_repeats=request.importance_repeats,
        **({"fold_map": fold_map} if fold_map is not None else {}),
    )
    result = executor.run(request.config, progress, cancel, strategy_yaml=request.strategy_yaml)
    archive = result.bundle.to_archive_bytes()
    return WorkerOutcome(
        archive=archive,
        metrics=result.metrics,
        summary=dict(result.summary),
        device=result.device,
        duration_s=result.duration_s,
        step_times=dict(result.step_times),
        threads=torch.get_num_threads(),
        cpu_s=time.process_time() - cpu_start,
    )
