"""Settings both services share about the training work they accept and how they run it.

``BackendSettings`` and ``HostSettings`` inherit these fields; each gives them its own
environment prefix (``KTRDR_BACKEND_MAX_EPOCHS``, ``KTRDR_HOST_MAX_EPOCHS``, ...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from ktrdr.config.limits import WorkLimits
from ktrdr.config.safe_yaml import DEFAULT_MAX_STRATEGY_BYTES


class TrainingWorkSettings(BaseSettings):
    """Bounds on untrusted strategies, and the worker processes that train them."""

    # Largest strategy text, UTF-8 bytes; larger ones get RESOURCE_EXHAUSTED before any
    # parsing (PREFIX_MAX_STRATEGY_BYTES).
    max_strategy_bytes: int = Field(default=DEFAULT_MAX_STRATEGY_BYTES, gt=0)
    # Upper bounds on model.training.epochs, hidden layers, units per layer, total model
    # parameters, model.features.lookback_periods and batch size (PREFIX_MAX_EPOCHS,
    # _MAX_LAYERS, _MAX_LAYER_WIDTH, _MAX_PARAMETERS, _MAX_LOOKBACK, _MAX_BATCH_SIZE).
    max_epochs: int = Field(default=WorkLimits.max_epochs, gt=0)
    max_layers: int = Field(default=WorkLimits.max_layers, gt=0)
    max_layer_width: int = Field(default=WorkLimits.max_layer_width, gt=0)
    max_parameters: int = Field(default=WorkLimits.max_parameters, gt=0)
    max_lookback: int = Field(default=WorkLimits.max_lookback, gt=0)
    max_batch_size: int = Field(default=WorkLimits.max_batch_size, gt=0)

    # Threads of one training's worker process (torch intra/inter-op, OpenMP, BLAS); 0 =
    # this machine's CPUs divided by the runs that may train at once (PREFIX_WORKER_THREADS).
    worker_threads: int = Field(default=0, ge=0)
    # Worker processes started ahead (imports done, torch warmed up) once no run has trained
    # for 2 s; 0 starts each worker when its run begins (PREFIX_WORKER_SPARES).
    worker_spares: int = Field(default=1, ge=0)
    # When the warm-worker forkserver imports the training stack (PREFIX_WORKER_PRELOAD):
    # "at-start" (with the service, so its first run does not wait ~2-4 s for torch's
    # imports; ~0.4 GB resident while idle), "first-run" (with the first run that needs a
    # worker), or "auto": at start where the service trains by default (a host outside Ray
    # mode; a backend whose default mode is local, or auto without hosts), else first-run.
    worker_preload: Literal["auto", "at-start", "first-run"] = "auto"

    @field_validator("worker_preload", mode="before")
    @classmethod
    def _preload_words(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace("_", "-")
        return value

    def preload_at_start(self, trains_by_default: bool) -> bool:
        """Whether the warm-worker forkserver starts with the service (``worker_preload``)."""
        if self.worker_preload == "auto":
            return trains_by_default
        return self.worker_preload == "at-start"

    @property
    def work_limits(self) -> WorkLimits:
        """The training-work bounds every incoming strategy is checked against."""
        return WorkLimits(
            max_epochs=self.max_epochs,
            max_layers=self.max_layers,
            max_layer_width=self.max_layer_width,
            max_parameters=self.max_parameters,
            max_lookback=self.max_lookback,
            max_batch_size=self.max_batch_size,
        )


class OperabilitySettings(BaseSettings):
    """What a service tells its operators: Prometheus metrics and the log format
    (README "Operations")."""

    # HOST:PORT of the Prometheus /metrics HTTP endpoint (PREFIX_METRICS_ADDRESS, e.g.
    # 127.0.0.1:9464; port 0 picks a free one); empty: no endpoint, no metrics kept.
    metrics_address: str = ""
    # The endpoint has neither TLS nor authentication: a non-loopback METRICS_ADDRESS is
    # refused unless this is true (PREFIX_METRICS_ALLOW_REMOTE).
    metrics_allow_remote: bool = False
    # Log lines as text, or one JSON object per line (PREFIX_LOG_FORMAT).
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_address", mode="before")
    @classmethod
    def _check_metrics_address(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return "" if isinstance(value, str) else value
        text = value.strip()
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"metrics_address {value!r}: expected HOST:PORT, port 0..65535")
        return text


__all__ = ["OperabilitySettings", "TrainingWorkSettings"]
