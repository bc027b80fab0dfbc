"""The host's Prometheus metrics (on when ``KTRDR_HOST_METRICS_ADDRESS`` is set).

Sessions, epochs and deliveries are counted at their transitions (``HostEvents``); the
sessions active now and the GPU memory are read at each scrape. GPU memory is exported only
where this process already uses CUDA (torch imported and CUDA initialised here): a scrape
never imports torch or creates a CUDA context.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ktrdr.service.metrics import GrpcServerMetrics, new_registry
from ktrdr.training.progress import STEP_NAMES, ProgressEvent, ProgressKind
from ktrdr_host.events import HostEvents

if TYPE_CHECKING:
    from ktrdr_host.sessions import SessionRegistry

EPOCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
TRANSFER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_TRAIN_STEP = STEP_NAMES.index("train") + 1


class HostMetrics(HostEvents):
    """The host's registry: transitions counted here, current state collected at scrape."""

    def __init__(self) -> None:
        self.registry: CollectorRegistry = new_registry("host")
        self.grpc = GrpcServerMetrics(self.registry)
        r = self.registry
        self.started = Counter(
            "ktrdr_host_sessions_started_total", "Sessions admitted.", registry=r
        )
        self.finished = Counter(
            "ktrdr_host_sessions_finished_total",
            "Sessions ended, by outcome (completed: model spooled; failed; cancelled).",
            ["outcome"],
            registry=r,
        )
        self.epochs = Counter("ktrdr_host_epochs_total", "Training epochs finished.", registry=r)
        self.epoch_seconds = Histogram(
            "ktrdr_host_epoch_duration_seconds",
            "Time of one epoch (the first from the start of the train step).",
            buckets=EPOCH_BUCKETS,
            registry=r,
        )
        self.uploads = Counter(
            "ktrdr_host_uploads_total",
            "SubmitResults attempts, by outcome (delivered, retry, failed).",
            ["outcome"],
            registry=r,
        )
        self.upload_bytes = Counter(
            "ktrdr_host_upload_bytes_total",
            "Bytes of model archives delivered (spooled archive size).",
            registry=r,
        )
        self.upload_seconds = Histogram(
            "ktrdr_host_upload_duration_seconds",
            "Time of one SubmitResults attempt, by outcome.",
            ["outcome"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "ktrdr_host_upload_retries_total",
            "Delivery attempts that failed and were scheduled again.",
            registry=r,
        )
        for outcome in ("completed", "failed", "cancelled"):  # present at 0 from the start
            self.finished.labels(outcome)
        for outcome in ("delivered", "retry", "failed"):
            self.uploads.labels(outcome)

    def watch(self, registry: SessionRegistry, max_sessions: int) -> None:
        """Collect the sessions active now (and GPU memory) at each scrape."""
        self.registry.register(_CurrentState(registry, max_sessions))

    # -- transitions (HostEvents) ------------------------------------------------------------
    def session_started(self) -> None:
        self.started.inc()

    def session_finished(self, outcome: str) -> None:
        self.finished.labels(outcome).inc()

    def run_observer(self) -> Callable[[ProgressEvent], None]:
        return _EpochClock(self.epochs, self.epoch_seconds)

    def upload_attempt(self, outcome: str, sent_bytes: int, seconds: float) -> None:
        self.uploads.labels(outcome).inc()
        self.upload_seconds.labels(outcome).observe(seconds)
        if outcome == "retry":
            self.retries.inc()
        if sent_bytes > 0:
            self.upload_bytes.inc(sent_bytes)


class _EpochClock:
    """One run's epochs: each timed from the previous one (the first from the train step)."""

    def __init__(self, epochs: Counter, seconds: Histogram) -> None:
        self.epochs = epochs
        self.seconds = seconds
        self.since: float | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind is ProgressKind.EPOCH:
            now = time.monotonic()
            self.epochs.inc()
            if self.since is not None:
                self.seconds.observe(now - self.since)
            self.since = now
        elif event.kind is ProgressKind.STEP_STARTED and event.step == _TRAIN_STEP:
            self.since = time.monotonic()


class _CurrentState(Collector):
    def __init__(self, registry: SessionRegistry, max_sessions: int) -> None:
        self.sessions = registry
        self.max_sessions = max_sessions

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ktrdr_host_sessions_active",
            "Sessions queued, running or cancelling now.",
            value=self.sessions.active_count,
        )
        yield GaugeMetricFamily(
            "ktrdr_host_sessions_max",
            "Sessions this host trains at once (KTRDR_HOST_MAX_SESSIONS; Ray mode: per "
            "cluster capacity instead).",
            value=self.max_sessions,
        )
        yield from _gpu_memory()


def _gpu_memory() -> Iterator[Metric]:
    """Free and total memory of each CUDA device, if this process already uses CUDA."""
    torch: Any = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    total = GaugeMetricFamily(
        "ktrdr_host_device_memory_total_bytes", "Memory of each GPU.", labels=["device"]
    )
    free = GaugeMetricFamily(
        "ktrdr_host_device_memory_free_bytes", "Free memory of each GPU.", labels=["device"]
    )
    for index in range(torch.cuda.device_count()):
        free_bytes, total_bytes = torch.cuda.mem_get_info(index)
        total.add_metric([f"cuda:{index}"], total_bytes)
        free.add_metric([f"cuda:{index}"], free_bytes)
    yield total
    yield free


__all__ = ["HostMetrics"]
