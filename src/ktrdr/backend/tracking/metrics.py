"""The backend's Prometheus metrics (on when ``KTRDR_BACKEND_METRICS_ADDRESS`` is set).

Counters and histograms are fed by the lifecycle's transitions (``BackendEvents``); gauges of
what exists now (active and queued operations, hosts, running sweeps) are read from the
operations, the host queue, the mode selector's last health checks and the sweeps at each
scrape, so they cannot drift from the truth. Labels are modes, statuses and outcomes only.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ktrdr.backend.execution.mode_selector import MODE_NAMES
from ktrdr.backend.tracking.events import BackendEvents
from ktrdr.service.metrics import GrpcServerMetrics, new_registry
from ktrdr.training.v1 import backend_pb2 as pb

if TYPE_CHECKING:
    from ktrdr.backend.operations import Operations
    from ktrdr.backend.sweeps import Sweeps

# Trainings take seconds to hours.
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
# A queue wait is milliseconds (a free slot) to hours (every host busy).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 21600)
# A SubmitResults stream: milliseconds for a small model on loopback, minutes for a large one.
TRANSFER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


def mode_label(mode: int) -> str:
    return MODE_NAMES.get(mode, "unknown")


def status_label(status: int) -> str:
    try:
        return pb.OperationStatus.Name(status).removeprefix("OPERATION_STATUS_").lower()
    except ValueError:
        return "unknown"


class BackendMetrics(BackendEvents):
    """The backend's registry: transitions counted here, current state collected at scrape."""

    def __init__(self) -> None:
        self.registry: CollectorRegistry = new_registry("backend")
        self.grpc = GrpcServerMetrics(self.registry)
        r = self.registry
        self.created = Counter(
            "ktrdr_operations_created_total",
            "Operations recorded, by the execution mode chosen (local, host).",
            ["mode"],
            registry=r,
        )
        self.finished = Counter(
            "ktrdr_operations_finished_total",
            "Operations that reached a terminal status, by mode and status.",
            ["mode", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "ktrdr_operation_duration_seconds",
            "Time from an operation's creation to its terminal status, by mode and status.",
            ["mode", "status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "ktrdr_operation_queue_wait_seconds",
            "Time from an operation's creation until it started running, by mode.",
            ["mode"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.uploads = Counter(
            "ktrdr_results_uploads_total",
            "SubmitResults streams received, by outcome (stored, duplicate, refused).",
            ["outcome"],
            registry=r,
        )
        self.upload_bytes = Counter(
            "ktrdr_results_received_bytes_total",
            "Bytes of model bundles stored from SubmitResults (decompressed archive size).",
            registry=r,
        )
        self.upload_seconds = Histogram(
            "ktrdr_results_upload_duration_seconds",
            "Time to receive one SubmitResults stream, by outcome.",
            ["outcome"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.downloads = Counter(
            "ktrdr_model_downloads_total",
            "DownloadModel streams that sent bytes, by outcome (complete, incomplete).",
            ["outcome"],
            registry=r,
        )
        self.download_bytes = Counter(
            "ktrdr_model_download_bytes_total",
            "Encoded bytes of model archives sent by DownloadModel.",
            registry=r,
        )
        self.trials = Counter(
            "ktrdr_sweep_trials_total",
            "Sweep trials started and ended, by state (started, completed, pruned, failed, "
            "cancelled, interrupted).",
            ["state"],
            registry=r,
        )
        for mode in ("local", "host"):  # present from the first scrape, at 0
            self.created.labels(mode)
        for outcome in ("stored", "duplicate", "refused"):
            self.uploads.labels(outcome)
        for state in ("started", "completed", "pruned", "failed", "cancelled", "interrupted"):
            self.trials.labels(state)

    def watch(self, operations: Operations, sweeps: Sweeps) -> None:
        """Collect the current state from these at each scrape."""
        self.registry.register(_CurrentState(operations, sweeps))

    # -- transitions (BackendEvents) -------------------------------------------------------
    def operation_created(self, mode: int) -> None:
        self.created.labels(mode_label(mode)).inc()

    def operation_running(self, mode: int, created_us: int) -> None:
        self.queue_wait.labels(mode_label(mode)).observe(_since(created_us))

    def operation_finished(self, mode: int, status: int, created_us: int) -> None:
        labels = (mode_label(mode), status_label(status))
        self.finished.labels(*labels).inc()
        self.duration.labels(*labels).observe(_since(created_us))

    def upload_finished(self, outcome: str, raw_bytes: int, seconds: float) -> None:
        self.uploads.labels(outcome).inc()
        self.upload_seconds.labels(outcome).observe(seconds)
        if raw_bytes > 0:
            self.upload_bytes.inc(raw_bytes)

    def download_finished(self, outcome: str, sent_bytes: int) -> None:
        self.downloads.labels(outcome).inc()
        if sent_bytes > 0:
            self.download_bytes.inc(sent_bytes)

    def trial_changed(self, state: str) -> None:
        self.trials.labels(state).inc()


def _since(created_us: int) -> float:
    return max(0.0, time.time() - created_us / 1e6) if created_us else 0.0


class _CurrentState(Collector):
    """Gauges read at scrape time (from prometheus_client's HTTP thread: copies only)."""

    def __init__(self, operations: Operations, sweeps: Sweeps) -> None:
        self.operations = operations
        self.sweeps = sweeps

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "ktrdr_operations_active",
            "Operations running now, by mode.",
            labels=["mode"],
        )
        queued = GaugeMetricFamily(
            "ktrdr_operations_queued",
            "Operations waiting to run (PENDING), by mode: a local slot, a host slot, a host's "
            "answer.",
            labels=["mode"],
        )
        by_status = Tally(self.operations.live_states())
        for mode in ("local", "host"):
            active.add_metric([mode], by_status[(mode, "running")])
            queued.add_metric([mode], by_status[(mode, "pending")])
        yield active
        yield queued
        yield GaugeMetricFamily(
            "ktrdr_host_queue_operations",
            "Host operations waiting for a free host slot (every healthy host busy).",
            value=len(self.operations.hosts.queue),
        )
        selector = self.operations.selector
        yield GaugeMetricFamily(
            "ktrdr_hosts_configured",
            "Training hosts this backend knows (--host-address).",
            value=len(selector.host_addresses),
        )
        checked = list(dict(selector.last_health).values())
        yield GaugeMetricFamily(
            "ktrdr_hosts_available",
            "Hosts that answered SERVING with their capabilities at their last health check "
            "(checked when work is placed or queued; a host not checked yet is in neither).",
            value=sum(1 for healthy in checked if healthy),
        )
        yield GaugeMetricFamily(
            "ktrdr_hosts_unavailable",
            "Hosts whose last health check failed (unreachable, NOT_SERVING, no capabilities).",
            value=sum(1 for healthy in checked if not healthy),
        )
        yield GaugeMetricFamily(
            "ktrdr_sweeps_running",
            "Sweeps running in this backend.",
            value=self.sweeps.running_count,
        )


__all__ = ["BackendMetrics"]
