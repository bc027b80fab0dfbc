"""The host's settings, read from the environment (prefix ``KTRDR_HOST_``) or an optional ``.env``.

Every field below is one environment variable: ``address`` is ``KTRDR_HOST_ADDRESS``,
``delivery_max_backoff_s`` is ``KTRDR_HOST_DELIVERY_MAX_BACKOFF_S``, and so on. Command-line
options of ``ktrdr host serve`` win over the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ktrdr.config.service_settings import OperabilitySettings, TrainingWorkSettings
from ktrdr.security.local_records import announced_token_file
from ktrdr.security.settings import ServerSecurity, token_source
from ktrdr.security.tls import ClientTLS
from ktrdr.transfer import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MESSAGE_BYTES

DEFAULT_BACKEND_TOKEN_FILE = Path(".ktrdr/backend/host.token")


class HostSettings(ServerSecurity, TrainingWorkSettings, OperabilitySettings):
    """Where the host listens, what it trains on, how it delivers and how it stops."""

    model_config = SettingsConfigDict(
        env_prefix="KTRDR_HOST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Listen address, "host:port"; port 0 picks a free one (printed at start).
    address: str = "127.0.0.1:50051"
    # Directory holding the OHLCV files the strategies train on.
    data_dir: Path = Path("data/samples")
    # Where finished models wait until the backend acknowledges them (survives restarts).
    spool_dir: Path = Path(".ktrdr-host/spool")
    # Compute device for sessions that do not ask for one: auto, cpu, cuda, cuda:N or mps.
    device: str = "auto"
    # How many sessions may train at once; more are refused with RESOURCE_EXHAUSTED.
    max_sessions: int = Field(default=1, ge=1)
    # How long finished sessions stay visible to GetSession/ListSessions/WatchSession.
    finished_session_ttl_s: float = Field(default=3600.0, ge=0)
    # A heartbeat event is sent when a session reported nothing for this long.
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=5.0)
    # Upper bound on batch progress events per second and session.
    max_batch_events_per_s: float = Field(default=4.0, gt=0)
    # How long CancelTraining waits for the session to stop before answering CANCELLING.
    cancel_wait_s: float = Field(default=2.0, ge=0)

    # Delivery: wait before the first retry; each further wait is `factor` times longer ...
    delivery_initial_backoff_s: float = Field(default=1.0, gt=0)
    # ... growth factor of the wait between attempts ...
    delivery_backoff_factor: float = Field(default=2.0, ge=1.0)
    # ... capped here; after that, attempts go on at this interval until the backend answers.
    delivery_max_backoff_s: float = Field(default=8.0, gt=0)
    # Deadline of one SubmitResults call (the whole stream).
    delivery_timeout_s: float = Field(default=300.0, gt=0)
    # How often a running host looks for models put back into its spool (ktrdr host spool
    # resend) and starts delivering them.
    spool_scan_interval_s: float = Field(default=5.0, gt=0)
    # Encoded bytes per SubmitResults chunk.
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, gt=0)
    # Message-size limit of the server and of every channel the host opens.
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)

    # On SIGTERM/SIGINT: how long running sessions may go on before they are cancelled.
    shutdown_grace_s: float = Field(default=30.0, ge=0)

    # -- Ray mode (README "Ray mode"): empty keeps training in this machine's worker processes --
    # The Ray cluster sessions train on: "auto" (the cluster this machine belongs to),
    # "HOST:PORT" of its head (GCS), or "ray://HOST:PORT" (Ray Client). Needs the `ray` extra.
    ray_address: str = ""
    # This machine's address as a node of the cluster (Ray's node IP); empty lets Ray pick.
    ray_node_ip_address: str = ""
    # CPUs one session takes on a node (also its torch thread budget there).
    ray_cpus_per_session: float = Field(default=1.0, gt=0)
    # GPUs one CUDA session takes; fractions share a GPU between sessions.
    ray_gpus_per_session: float = Field(default=1.0, gt=0)
    # Sessions that may wait for free cluster resources (QUEUED); more are RESOURCE_EXHAUSTED.
    ray_max_queued: int = Field(default=8, ge=0)
    # How often a session whose node or worker died is started again elsewhere.
    ray_task_retries: int = Field(default=1, ge=0)
    # A directory with the market data at the same path on every node; empty ships each
    # session's files through Ray's object store (workers need nothing of this machine).
    ray_shared_data_dir: Path | None = None
    # Upper bound on the market data shipped for one session.
    ray_max_data_bytes: int = Field(default=1 << 30, gt=0)
    # How often the cluster is asked for its nodes; health is NOT_SERVING while it cannot be.
    ray_health_interval_s: float = Field(default=2.0, gt=0, le=60.0)
    # Running sessions fail once the cluster has been unreachable this long.
    ray_lost_after_s: float = Field(default=30.0, gt=0)

    # -- security: TLS fields in ServerSecurity; see the README's "Security" section --
    # The token the backend must present (KTRDR_HOST_AUTH_TOKEN). When empty, the token in
    # AUTH_TOKEN_FILE is used, created at first start (default: beside the spool directory).
    auth_token: SecretStr = SecretStr("")
    auth_token_file: Path | None = None
    # Results targets this host delivers to: "host:port", or "host" for any port. Empty:
    # loopback addresses only. Others are refused at StartTraining with PERMISSION_DENIED.
    allowed_results_targets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Under mTLS (TLS_REQUIRE_CLIENT_CERT): the client certificates accepted, by subject CN or
    # DNS subjectAltName, e.g. "backend.example.org" (a certificate from the same CA with
    # another name is refused). Needed when AUTH_TOKEN is empty; with a token, a call may
    # present either the token or an allowed certificate.
    allowed_client_identities: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The host-role token presented to the backend with SubmitResults
    # (KTRDR_HOST_BACKEND_TOKEN); when empty, BACKEND_TOKEN_FILE is read at each delivery
    # (a backend on this machine writes its local host token there by default).
    # Empty BACKEND_TOKEN_FILE: for a backend on this machine, the host-token file it
    # announced for its port (when the delivery names its target), else
    # .ktrdr/backend/host.token of the working directory at start.
    backend_token: SecretStr = SecretStr("")
    backend_token_file: Path | None = None
    # TLS towards the backend: its CA (or BACKEND_TLS=true for the system roots), and the
    # client certificate presented (default: this server's TLS_CERT/TLS_KEY).
    backend_tls: bool = False
    backend_tls_ca: Path | None = None
    backend_tls_cert: Path | None = None
    backend_tls_key: Path | None = None
    backend_tls_server_name: str = ""

    # -- joining a backend by itself (README "Hosts that register themselves") --
    # The backend to register with, "host:port" (KTRDR_HOST_BACKEND_ADDRESS; ktrdr host serve
    # --backend); empty: no registration (the backend lists this host with --host-address).
    # Token and TLS: BACKEND_TOKEN* and BACKEND_TLS* above.
    backend_address: str = ""
    # The "host:port" the backend should dial (--advertise-address); empty: the listen
    # address with its port resolved (required when listening on 0.0.0.0 or ::).
    advertise_address: str = ""
    # This host's stable id in the backend's registry; empty: the id created once and kept in
    # host.id beside the spool directory.
    host_id: str = Field(default="", pattern=r"^[A-Za-z0-9._:-]{0,128}$")

    @field_validator("allowed_results_targets", "allowed_client_identities", mode="before")
    @classmethod
    def _split_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def backend_client_tls(self) -> ClientTLS:
        """How channels to the backend are secured (plaintext unless BACKEND_TLS[_CA])."""
        return self.peer_tls(
            enabled=self.backend_tls,
            ca=self.backend_tls_ca,
            cert=self.backend_tls_cert,
            key=self.backend_tls_key,
            server_name=self.backend_tls_server_name,
        )

    def backend_token_source(self, target: str | None = None) -> Callable[[], str | None]:
        """The token presented to the backend at ``target``: the setting, else its file read
        at each call: BACKEND_TOKEN_FILE, else the file that backend announced (a backend on
        this machine), else ``.ktrdr/backend/host.token`` (working directory at start)."""
        purpose = "token presented to the backend"
        if self.backend_token_file is not None:
            return token_source(self.backend_token, self.backend_token_file, purpose=purpose)
        fallback = self.start_path(DEFAULT_BACKEND_TOKEN_FILE)

        def discovered() -> Path:
            found = announced_token_file(target, "backend", "host") if target else None
            return found or fallback

        if target:
            purpose = f"{purpose} {target}"
        return token_source(self.backend_token, discovered, purpose=purpose)

    @property
    def token_file(self) -> Path:
        """Where the host's own token lives when KTRDR_HOST_AUTH_TOKEN is not set."""
        return self.auth_token_file or self.spool_dir.parent / "auth.token"

    @field_validator("ray_address", mode="before")
    @classmethod
    def _check_ray_address(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text or text == "auto":
            return text
        target = text.removeprefix("ray://")
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(
                f"ray_address {value!r} is not 'auto', 'HOST:PORT' or 'ray://HOST:PORT'"
            )
        return text

    @field_validator("device", mode="before")
    @classmethod
    def _lower_device(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_sizes(self) -> HostSettings:
        if self.chunk_size + 64 * 1024 > self.max_message_bytes:
            raise ValueError(
                f"chunk_size ({self.chunk_size}) must be at least 64 KiB below "
                f"max_message_bytes ({self.max_message_bytes})"
            )
        if self.delivery_max_backoff_s < self.delivery_initial_backoff_s:
            raise ValueError("delivery_max_backoff_s must not be below delivery_initial_backoff_s")
        return self

    def backoff_s(self, failed_attempts: int) -> float:
        """Wait after the ``failed_attempts``-th failed attempt (1-based): 1, 2, 4, 8, 8... s."""
        exponent = max(failed_attempts - 1, 0)
        wait = self.delivery_initial_backoff_s * self.delivery_backoff_factor**exponent
        return min(wait, self.delivery_max_backoff_s)


__all__ = ["HostSettings"]
