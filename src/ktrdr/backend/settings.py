"""Backend settings, read from the environment (or an optional ``.env``).

Every variable has the prefix ``KTRDR_BACKEND_`` except ``TRAINING_DEFAULT_MODE``, which keeps
the name of the original plan. Lists (``KTRDR_BACKEND_HOST_ADDRESSES``) are JSON
(``["10.0.0.5:50051"]``) or comma-separated (``10.0.0.5:50051,10.0.0.6:50051``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ktrdr.config.service_settings import OperabilitySettings, TrainingWorkSettings
from ktrdr.security.local_records import announced_token_file
from ktrdr.security.settings import ServerSecurity, token_source
from ktrdr.security.tls import ClientTLS
from ktrdr.transfer import DEFAULT_MAX_MESSAGE_BYTES

DefaultMode = Literal["auto", "local", "host"]
DEFAULT_ADDRESS = "127.0.0.1:50052"
DEFAULT_HOST_TOKEN_FILE = Path(".ktrdr-host/auth.token")
_HOST_TOKEN = "token presented to host"


class BackendSettings(ServerSecurity, TrainingWorkSettings, OperabilitySettings):
    """Where the backend listens, keeps its data, finds hosts, and how it chooses a mode."""

    model_config = SettingsConfigDict(
        env_prefix="KTRDR_BACKEND_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # Listen address host:port (KTRDR_BACKEND_ADDRESS); port 0 picks a free port.
    address: str = DEFAULT_ADDRESS
    # SQLite database (backend.db) and the model store models/ live here
    # (KTRDR_BACKEND_DATA_DIR).
    data_dir: Path = Path(".ktrdr/backend")
    # Strategy files a CreateTraining request may name (KTRDR_BACKEND_STRATEGIES_DIR).
    strategies_dir: Path = Path("examples/strategies")
    # OHLCV files for local runs (KTRDR_BACKEND_MARKET_DATA_DIR).
    market_data_dir: Path = Path("data/samples")
    # Training hosts in order of preference (KTRDR_BACKEND_HOST_ADDRESSES).
    host_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Address hosts send results to; empty means the listen address
    # (KTRDR_BACKEND_RESULTS_ADDRESS). Set it when listening on 0.0.0.0.
    results_address: str = ""
    # Default execution mode until changed at run time (TRAINING_DEFAULT_MODE).
    default_mode: DefaultMode = Field(
        default="auto",
        validation_alias=AliasChoices("TRAINING_DEFAULT_MODE", "default_mode"),
    )
    # Deadline of one host health check / capabilities call, seconds
    # (KTRDR_BACKEND_HEALTH_CHECK_TIMEOUT_S).
    health_check_timeout_s: float = Field(default=2.0, gt=0)
    # Local trainings running at once; further requests queue (KTRDR_BACKEND_LOCAL_CONCURRENCY).
    local_concurrency: int = Field(default=1, ge=1)
    # Largest decompressed bundle SubmitResults accepts, bytes (KTRDR_BACKEND_MAX_BUNDLE_BYTES).
    max_bundle_bytes: int = Field(default=1 << 30, gt=0)
    # Message-size limit of the server and of host channels, bytes
    # (KTRDR_BACKEND_MAX_MESSAGE_BYTES).
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)
    # Compute device of local runs: auto|cpu|cuda|mps (KTRDR_BACKEND_DEVICE).
    device: str = "auto"

    # -- security: TLS fields in ServerSecurity; see the README's "Security" section --
    # Token this backend presents to its hosts (KTRDR_BACKEND_HOST_TOKEN); when empty, the
    # file KTRDR_BACKEND_HOST_TOKEN_FILE is read at each call (a host on this machine writes
    # its token there by default).
    # Empty HOST_TOKEN_FILE: for a host on this machine, the token file it announced for its
    # port (ktrdr.security.local_records), else .ktrdr-host/auth.token of the working
    # directory at start.
    host_token: SecretStr = SecretStr("")
    host_token_file: Path | None = None
    # TLS towards hosts: the CA that signs their certificates (KTRDR_BACKEND_HOST_TLS_CA) or
    # HOST_TLS=true for the system roots; the client certificate presented to them
    # (KTRDR_BACKEND_HOST_TLS_CERT/_KEY, default: this server's TLS_CERT/TLS_KEY).
    host_tls: bool = False
    host_tls_ca: Path | None = None
    host_tls_cert: Path | None = None
    host_tls_key: Path | None = None
    host_tls_server_name: str = ""

    # -- bounds on uploads and queued work --
    # SubmitResults: longest pause between two messages, and the whole stream's deadline, s.
    upload_idle_timeout_s: float = Field(default=60.0, gt=0)
    upload_deadline_s: float = Field(default=1800.0, gt=0)
    # SubmitResults streams received at once; more are refused with RESOURCE_EXHAUSTED.
    max_concurrent_uploads: int = Field(default=8, ge=1)
    # Operations waiting as PENDING; CreateTraining beyond it is RESOURCE_EXHAUSTED.
    max_pending: int = Field(default=64, ge=1)
    # Long server streams (WatchOperation/WatchSweep; DownloadModel): open at once in all, and
    # per caller (token); more are refused at once with RESOURCE_EXHAUSTED.
    max_watch_streams: int = Field(default=256, ge=1)
    max_watch_streams_per_user: int = Field(default=32, ge=1)
    max_download_streams_per_user: int = Field(default=2, ge=1)
    # A client that takes no message of a stream for this long is ended (DEADLINE_EXCEEDED).
    stream_send_timeout_s: float = Field(default=30.0, gt=0)
    # Of those, how many one caller (one token) may have waiting, so that one trainer cannot
    # fill the shared queue (KTRDR_BACKEND_MAX_PENDING_PER_USER).
    max_pending_per_user: int = Field(default=16, ge=1)
    # Host operations waiting for a free host slot (every healthy host busy); CreateTraining in
    # host mode beyond it is RESOURCE_EXHAUSTED (KTRDR_BACKEND_MAX_HOST_QUEUE).
    max_host_queue: int = Field(default=64, ge=1)
    # While operations wait for a host, how often the hosts are asked again for free slots, s
    # (KTRDR_BACKEND_HOST_QUEUE_POLL_S); a training of this backend that ends asks at once.
    host_queue_poll_s: float = Field(default=2.0, gt=0)
    # -- hosts that register themselves (RegisterHost; README "Hosts that register themselves") --
    # Accept RegisterHost (KTRDR_BACKEND_HOST_REGISTRATION). While on and no host is known,
    # host-mode work waits for one to register instead of running locally.
    host_registration: bool = True
    # How often registered hosts heartbeat, s (KTRDR_BACKEND_HOST_HEARTBEAT_INTERVAL_S).
    host_heartbeat_interval_s: float = Field(default=5.0, gt=0)
    # A registered host without a heartbeat for this long is unavailable: no new work, s
    # (KTRDR_BACKEND_HOST_HEARTBEAT_TIMEOUT_S; at least the interval).
    host_heartbeat_timeout_s: float = Field(default=15.0, gt=0)
    # ... and removed after this long, its operations failing with that cause, s
    # (KTRDR_BACKEND_HOST_REMOVAL_AFTER_S; at least the timeout).
    host_removal_after_s: float = Field(default=300.0, gt=0)
    # Registered hosts at most; more are refused with RESOURCE_EXHAUSTED
    # (KTRDR_BACKEND_MAX_REGISTERED_HOSTS).
    max_registered_hosts: int = Field(default=64, ge=1)
    # Addresses a host may register (the backend dials them with its host token):
    # "host:port", "host", a network "10.0.0.0/8", or "*"; empty: loopback only
    # (KTRDR_BACKEND_ALLOWED_HOST_ADDRESSES).
    allowed_host_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds a graceful stop waits for RPCs to finish (KTRDR_BACKEND_GRACE_S).
    grace_s: float = Field(default=5.0, ge=0)
    # MLflow tracking URI: every finished operation is logged there as a run ("": off).
    mlflow_tracking_uri: str = ""
    # The MLflow experiment the runs go to (created when missing).
    mlflow_experiment: str = Field(default="ktrdr", min_length=1)
    # Where a new experiment keeps its artifacts ("": the tracking server's default; for a
    # sqlite:/// store, DATA_DIR/mlflow-artifacts).
    mlflow_artifact_location: str = ""
    # Longest wait between two attempts while the tracking store is unreachable, s.
    mlflow_retry_max_s: float = Field(default=60.0, gt=0)

    # -- sweeps (CreateSweep; need the sweeps extra, Optuna) --
    # Trials one sweep may ask for (KTRDR_BACKEND_SWEEP_MAX_TRIALS).
    sweep_max_trials: int = Field(default=1000, ge=1)
    # Trials of one sweep training at once (KTRDR_BACKEND_SWEEP_MAX_PARALLELISM).
    sweep_max_parallelism: int = Field(default=16, ge=1)
    # Sweeps running at once; CreateSweep beyond it is RESOURCE_EXHAUSTED
    # (KTRDR_BACKEND_SWEEP_MAX_RUNNING).
    sweep_max_running: int = Field(default=4, ge=1)
    # Of those, how many one caller (one token) may run, so that one researcher cannot take
    # every sweep slot (KTRDR_BACKEND_SWEEP_MAX_RUNNING_PER_USER).
    sweep_max_running_per_user: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _check_heartbeats(self) -> BackendSettings:
        if self.host_heartbeat_timeout_s < self.host_heartbeat_interval_s:
            raise ValueError(
                "host_heartbeat_timeout_s must not be below host_heartbeat_interval_s "
                f"({self.host_heartbeat_timeout_s:g} < {self.host_heartbeat_interval_s:g})"
            )
        if self.host_removal_after_s < self.host_heartbeat_timeout_s:
            raise ValueError("host_removal_after_s must not be below host_heartbeat_timeout_s")
        return self

    @field_validator("host_addresses", "allowed_host_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("default_mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def _absolute_extra(self, cwd: Path) -> dict[str, Any]:
        """MLflow: a relative SQLite database (``sqlite:///mlflow.db``) and an artifact
        location given as a relative path, both taken from the working directory at start."""
        update: dict[str, Any] = {}
        uri = self.mlflow_tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            database = uri[len(prefix) :]
            if database and database != ":memory:":
                update["mlflow_tracking_uri"] = prefix + str(cwd / database)
        location = self.mlflow_artifact_location
        if location and "://" not in location and not location.startswith("file:"):
            update["mlflow_artifact_location"] = str(cwd / Path(location).expanduser())
        return update

    def host_client_tls(self) -> ClientTLS:
        """How channels to hosts are secured (plaintext unless HOST_TLS[_CA])."""
        return self.peer_tls(
            enabled=self.host_tls,
            ca=self.host_tls_ca,
            cert=self.host_tls_cert,
            key=self.host_tls_key,
            server_name=self.host_tls_server_name,
        )

    def host_token_source(self, address: str | None = None) -> Callable[[], str | None]:
        """The token presented to the host at ``address``: the setting, else its file read at
        each call: HOST_TOKEN_FILE, else the file that host announced (a host on this
        machine), else ``.ktrdr-host/auth.token`` (from the working directory at start)."""
        if self.host_token_file is not None:
            return token_source(self.host_token, self.host_token_file, purpose=_HOST_TOKEN)
        fallback = self.start_path(DEFAULT_HOST_TOKEN_FILE)

        def discovered() -> Path:
            found = announced_token_file(address, "host", "auth") if address else None
            return found or fallback

        purpose = f"{_HOST_TOKEN} {address}" if address else _HOST_TOKEN
        return token_source(self.host_token, discovered, purpose=purpose)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "backend.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def incoming_dir(self) -> Path:
        """Temporary files of SubmitResults streams (same file system as the model store)."""
        return self.data_dir / "incoming"


__all__ = ["DEFAULT_ADDRESS", "BackendSettings", "DefaultMode"]
