"""Experiment tracking in MLflow: every finished operation becomes an MLflow run.

Off unless ``KTRDR_BACKEND_MLFLOW_TRACKING_URI`` is set (any MLflow tracking URI: a tracking
server ``http(s)://...``, ``sqlite:///path/mlflow.db``, ``databricks``...). A run carries the
strategy's fields flattened into parameters (``model.training.learning_rate``), the per-epoch
curves as metrics with their epoch as step, the final test and trading metrics, tags
(operation, status, mode, host, device, seed, owner, strategy) and artifacts: the strategy as
trained, the model bundle and the training plot.

Logging never blocks or fails a training. A finished operation's id is written to a spool
folder (one small file each, so a backend restart loses nothing) and one background thread
logs it; while the tracking store is unreachable the thread retries with backoff, logs a
warning saying how many runs wait, and the runs appear once it is back. A run is found by its
``ktrdr.operation_id`` tag before one is created, so nothing is logged twice.

A sweep is a parent run and its trials' runs are its children (``tracking/sweeps.py``): the
sweep's start and end are spool entries too (``sweep-<id>.json``, ``sweep-<id>.end.json``),
and a trial whose parent run does not exist yet creates it first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.backend.tracking.sweeps import PARENT_TAG, ParentRuns
from ktrdr.training.v1 import backend_pb2 as pb

if TYPE_CHECKING:
    from ktrdr.backend.settings import BackendSettings
    from ktrdr.backend.store import OperationRecord, Store

logger = logging.getLogger(__name__)

OPERATION_TAG = "ktrdr.operation_id"
MAX_PARAM_CHARS = 6000  # MLflow's limit for one parameter value
_STATUS_NAMES: dict[int, str] = {
    pb.OPERATION_STATUS_COMPLETED: "completed",
    pb.OPERATION_STATUS_FAILED: "failed",
    pb.OPERATION_STATUS_CANCELLED: "cancelled",
}
_MODE_NAMES: dict[int, str] = {pb.EXECUTION_MODE_LOCAL: "local", pb.EXECUTION_MODE_HOST: "host"}
_RUN_STATUS = {"completed": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of nested mappings and lists as ``(dotted.path, value)``; lists of scalars stay
    one value (``[64, 32]``), lists of mappings get positions (``indicators[0].period``)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and any(isinstance(v, Mapping | list) for v in data):
        for i, value in enumerate(data):
            yield from flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix, data


def mlflow_key(path: str) -> str:
    """An MLflow parameter or metric name for a field path: ``indicators[0].period`` ->
    ``indicators.0.period`` (MLflow names take no brackets)."""
    return path.replace("[", ".").replace("]", "")


def _numbers(data: Any, prefix: str) -> dict[str, float]:
    """Finite numeric leaves (booleans excluded) of ``data`` under ``prefix``."""
    out: dict[str, float] = {}
    for key, value in flatten(data, prefix):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and math.isfinite(float(value)):
            out[mlflow_key(key)] = float(value)
    return out


class TrackingUnavailable(RuntimeError):
    """MLflow tracking is asked for but cannot work here (the backend refuses to start)."""


def start_tracker(settings: BackendSettings, store: Store) -> MlflowTracker:
    """The tracker for ``settings.mlflow_tracking_uri``; TrackingUnavailable without MLflow."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise TrackingUnavailable(
            "KTRDR_BACKEND_MLFLOW_TRACKING_URI is set but MLflow is not installed; install "
            "it with pip install 'ktrdr[mlflow]' or unset the setting"
        ) from None
    # The tracker retries on its own (with backoff, in order); MLflow's HTTP client would
    # otherwise spend minutes retrying each request against a server that is down.
    for name, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
    ):
        os.environ.setdefault(name, value)
    artifacts = settings.mlflow_artifact_location
    if not artifacts and settings.mlflow_tracking_uri.startswith("sqlite:"):
        # A database store keeps artifacts in ./mlruns of the working directory by default;
        # the backend's own data directory is the place for them.
        artifacts = (settings.data_dir / "mlflow-artifacts").resolve().as_uri()
    tracker = MlflowTracker(
        settings.mlflow_tracking_uri,
        settings.mlflow_experiment,
        settings.data_dir / "mlflow-pending",
        store,
        settings.models_dir,
        retry_max_s=settings.mlflow_retry_max_s,
        artifact_location=artifacts or None,
    )
    logger.info(
        "mlflow: logging finished operations to %s (experiment %s; %d waiting)",
        settings.mlflow_tracking_uri,
        settings.mlflow_experiment,
        len(tracker.pending()),
    )
    return tracker


class MlflowTracker:
    """Logs finished operations to MLflow from one background thread."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        spool_dir: Path,
        store: Store,
        models_dir: Path,
        *,
        retry_max_s: float = 60.0,
        artifact_location: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.experiment = experiment
        self.spool_dir = spool_dir
        self.store = store
        self.models_dir = models_dir
        self.retry_max_s = retry_max_s
        self.last_error = ""
        self.logged = 0
        self._client: Any = None
        # (sweep id, trial number) of a sweep's trial operation, None for a plain training.
        self.trial_of: Callable[[str], tuple[str, int] | None] = lambda _operation_id: None
        self.parents = ParentRuns()  # the backend sets its sweep store: sweeps' runs
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlflow-tracker", daemon=True)
        self._thread.start()

    # -- what the backend calls ------------------------------------------------------------
    def operation_finished(self, operation_id: str) -> None:
        """Queue ``operation_id`` for logging (a file write; never raises)."""
        self._queue(operation_id, {"operation_id": operation_id})

    def sweep_changed(self, sweep_id: str, finished: bool) -> None:
        """Queue a sweep's start (its parent run) or end (its status and best trial)."""
        name = f"sweep-{sweep_id}.end" if finished else f"sweep-{sweep_id}"
        self._queue(name, {"sweep_id": sweep_id, "finished": finished})

    def _queue(self, name: str, entry: dict[str, Any]) -> None:
        try:
            path = self.spool_dir / f"{name}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("mlflow: cannot queue %s: %s", name, exc)
            return
        self._wake.set()

    def pending(self) -> list[str]:
        """Entries waiting to be logged, oldest first: operation ids, ``sweep-<id>[.end]``."""
        stamped = []
        for path in self.spool_dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):  # logged meanwhile
                stamped.append((path.stat().st_mtime_ns, path.name, path.stem))
        return [stem for _, _, stem in sorted(stamped)]

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread (it finishes the run it is logging; what waits stays spooled)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("mlflow: the tracker is still in a call to %s", self.tracking_uri)

    # -- the thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            failed = False
            for operation_id in self.pending():
                if self._stop.is_set():
                    return
                try:
                    self._log(operation_id)
                except Exception as exc:
                    if _is_permanent(exc):  # the store refuses this run: keep it, go on
                        self._set_aside(operation_id, exc)
                        continue
                    # the store is down or busy: retry later, in order, with a fresh client
                    self._client = None
                    self.parents.forget()
                    failed = True
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    logger.warning(
                        "mlflow: cannot log to %s (%d run(s) waiting), retrying in %.0f s: %s",
                        self.tracking_uri,
                        len(self.pending()),
                        delay,
                        self.last_error,
                    )
                    break
                with contextlib.suppress(FileNotFoundError):
                    (self.spool_dir / f"{operation_id}.json").unlink()
                self.logged += 1
                self.last_error = ""
            if failed:
                self._wake.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
            else:
                delay = 1.0
                self._wake.wait()
            self._wake.clear()

    def _set_aside(self, operation_id: str, exc: Exception) -> None:
        failed = self.spool_dir / "failed"
        failed.mkdir(exist_ok=True)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        logger.error(
            "mlflow: the store refused operation %s (kept in %s): %s", operation_id, failed, reason
        )
        entry = {"operation_id": operation_id, "reason": reason}
        (failed / f"{operation_id}.json").write_text(json.dumps(entry))
        with contextlib.suppress(FileNotFoundError):
            (self.spool_dir / f"{operation_id}.json").unlink()

    def _experiment(self) -> tuple[Any, str]:
        """(client, experiment id), the experiment created if it does not exist."""
        from mlflow.tracking import MlflowClient

        if self._client is None:  # opening a store checks its schema: once, not per run
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        client = self._client
        experiment = client.get_experiment_by_name(self.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(self.experiment, self.artifact_location)
        )
        return client, str(experiment_id)

    def _log(self, name: str) -> None:
        if name.startswith("sweep-"):
            client, experiment_id = self._experiment()
            self.parents.log_sweep(client, experiment_id, name[6:].removesuffix(".end"))
            return
        operation_id = name
        record = self.store.get_operation(operation_id)
        if record is None:
            logger.warning("mlflow: operation %s is not in the store; not logged", operation_id)
            return
        client, experiment_id = self._experiment()
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.`{OPERATION_TAG}` = '{operation_id}'"
        )
        if found and found[0].info.status != "RUNNING":
            return  # logged before a restart interrupted the clean-up
        run_id = (
            found[0].info.run_id
            if found
            else client.create_run(
                experiment_id, run_name=f"{record.strategy_name}-{operation_id[:8]}"
            ).info.run_id
        )
        self._fill(client, run_id, record, experiment_id)

    def _fill(self, client: Any, run_id: str, record: OperationRecord, experiment_id: str) -> None:
        from mlflow.entities import Metric, Param, RunTag

        status = _STATUS_NAMES.get(record.status, "unknown")
        metadata = self._model_metadata(record)
        tags = {
            OPERATION_TAG: record.id,
            "ktrdr.strategy": record.strategy_name,
            "ktrdr.status": status,
            "ktrdr.mode": _MODE_NAMES.get(record.mode, "unspecified"),
            "ktrdr.host": record.host_address,
            "ktrdr.owner": record.owner,
            "ktrdr.device": str((metadata or {}).get("device", {}).get("type", "")),
            "ktrdr.seed": str((metadata or {}).get("seed", record.overrides.seed or "")),
        }
        trial = self.trial_of(record.id)
        tags["ktrdr.kind"] = "training" if trial is None else "trial"
        if trial is not None:
            tags["ktrdr.sweep"], tags["ktrdr.trial"] = trial[0], str(trial[1])
            parent = self.parents.run_id(client, experiment_id, trial[0])
            if parent:
                tags[PARENT_TAG] = parent
        if record.error is not None and record.error.message:
            tags["ktrdr.error"] = record.error.message[:5000]
        params = [
            Param(mlflow_key(key), str(value)[:MAX_PARAM_CHARS])
            for key, value in flatten(_strategy_fields(record))
            if len(key) <= 250
        ]
        step_time = (record.finished_us or record.created_us) // 1000
        metrics: list[Metric] = []
        for row in (metadata or {}).get("history", []):
            epoch = int(row.get("epoch", 0))
            for key, value in _numbers({k: v for k, v in row.items() if k != "epoch"}, "").items():
                metrics.append(Metric(key, value, step_time, epoch))
        for key, value in _numbers((metadata or {}).get("metrics", {}), "final").items():
            metrics.append(Metric(key, value, step_time, 0))
        for i in range(0, max(len(params), len(metrics), 1), 100):  # MLflow's batch limits
            client.log_batch(
                run_id,
                metrics=metrics[i : i + 100],
                params=params[i : i + 100],
                tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else [],
            )
        self._artifacts(client, run_id, record, metadata)
        client.set_terminated(run_id, _RUN_STATUS.get(status, "FINISHED"))

    def _artifacts(
        self, client: Any, run_id: str, record: OperationRecord, metadata: dict | None
    ) -> None:
        with tempfile.TemporaryDirectory(prefix="ktrdr-mlflow-") as tmp:
            strategy = Path(tmp) / "strategy.yaml"
            strategy.write_text(record.strategy_yaml, encoding="utf-8")
            client.log_artifact(run_id, str(strategy))
            model_dir = self._model_dir(record)
            if model_dir is not None and model_dir.is_dir():
                client.log_artifacts(run_id, str(model_dir), "model")
            if metadata is not None:
                try:
                    from ktrdr.plots import save_training_plot

                    plot = save_training_plot(metadata, Path(tmp) / "training.png")
                    client.log_artifact(run_id, str(plot), "plots")
                except ImportError as exc:  # matplotlib is not installed
                    logger.info("mlflow: no training plot (%s)", exc)

    def _model_dir(self, record: OperationRecord) -> Path | None:
        """The operation's model directory (None without a model)."""
        if not record.model_path:
            return None
        from ktrdr.storage.model_storage import locate_model

        try:
            return locate_model(self.models_dir, record.model_path)
        except Exception as exc:  # a damaged row: the run is logged without the model
            logger.warning("mlflow: operation %s: no model logged: %s", record.id, exc)
            return None

    def _model_metadata(self, record: OperationRecord) -> dict[str, Any] | None:
        model_dir = self._model_dir(record)
        if model_dir is None:
            return None
        path = model_dir / "metadata.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning(
                "mlflow: operation %s: its model's files are not readable (%s: %s); the run "
                "gets no metrics of the model, no model and no plot",
                record.id,
                type(exc).__name__,
                exc,
            )
            return None
        return data


_PERMANENT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS"}


def _is_permanent(exc: Exception) -> bool:
    """An MLflow refusal of the run itself (retrying would fail the same way)."""
    return getattr(exc, "error_code", None) in _PERMANENT_CODES


def _strategy_fields(record: OperationRecord) -> dict[str, Any]:
    """The strategy as trained (overrides applied), as plain data."""
    from ktrdr.config import parse_strategy
    from ktrdr.service.convert import apply_overrides_from_proto

    config = apply_overrides_from_proto(parse_strategy(record.strategy_yaml), record.overrides)
    data: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    return data


__all__ = ["OPERATION_TAG", "MlflowTracker", "TrackingUnavailable", "flatten", "start_tracker"]
