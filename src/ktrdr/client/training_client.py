"""``TrainingClient``: the backend from notebooks and scripts, in a few typed calls.

    client = TrainingClient("127.0.0.1:50052")
    result = client.train("examples/strategies/rsi_single.yaml", mode="host", seed=7)
    result.metrics_frame(); result.history; result.model.path

Every unary call has a deadline (``timeout_s``); watching a stream has none unless asked.
gRPC errors become ``KtrdrServiceError`` carrying the status code and the server's message.
The generated stubs stay available as ``client.backend_stub`` for anything not wrapped here.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr import tracing
from ktrdr.client.connection import client_tls, resolve_token
from ktrdr.client.errors import KtrdrClientError, service_error, translate_errors
from ktrdr.client.hosts import HostCalls
from ktrdr.client.interrupt import CtrlC
from ktrdr.client.models import ModelCalls
from ktrdr.client.progress import ProgressDisplay
from ktrdr.client.records import (
    ModelInfo,
    OperationInfo,
    StrategyInfo,
    mode_name,
    mode_to_proto,
    status_to_proto,
)
from ktrdr.client.results import TrainingResult
from ktrdr.client.sweeps import SweepCalls
from ktrdr.security.channels import sync_channel
from ktrdr.security.tls import ClientTLS
from ktrdr.service.convert import is_terminal, overrides_to_proto
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc, common_pb2
from ktrdr.transfer import grpc_options

DEFAULT_BACKEND_ADDRESS = "127.0.0.1:50052"
BACKEND_ADDRESS_ENV = "KTRDR_BACKEND_ADDRESS"
BACKEND_SERVICE = "ktrdr.training.v1.Backend"

EventCallback = Callable[[common_pb2.ProgressEvent], None]


CLIENT_SERVICE = "ktrdr-client"  # the spans' service name unless OTEL_SERVICE_NAME


def _start_tracing() -> None:
    """Traces from this process when the OTEL_* variables configure them; a setup this
    client cannot export with is said once, and the client works without traces."""
    try:
        tracing.start(CLIENT_SERVICE, announce=False)
    except tracing.TracingConfigError as exc:
        warnings.warn(f"traces are off: {exc}", RuntimeWarning, stacklevel=3)


def default_backend_address() -> str:
    """``$KTRDR_BACKEND_ADDRESS`` or ``127.0.0.1:50052``."""
    return os.environ.get(BACKEND_ADDRESS_ENV) or DEFAULT_BACKEND_ADDRESS


def field_overrides_to_proto(
    fields: Mapping[str, Any] | None, set_fields: Sequence[str] = ()
) -> list[common_pb2.FieldOverride]:
    """``FieldOverride`` messages: Python values sent as JSON (which is YAML), ``PATH=VALUE``
    strings as they are."""
    out = [
        common_pb2.FieldOverride(path=path, value=json.dumps(value))
        for path, value in (fields or {}).items()
    ]
    for text in set_fields:
        path, sep, value = text.partition("=")
        if not sep:
            raise KtrdrClientError(f"{text!r}: expected PATH=VALUE, e.g. model.training.epochs=20")
        out.append(common_pb2.FieldOverride(path=path.strip(), value=value))
    return out


def strategy_source(strategy: str | Path) -> dict[str, str]:
    """The ``CreateTrainingRequest`` oneof for a strategy given as a path, YAML text or name.

    A ``Path``, or a string naming an existing file, is read and sent as YAML text; a string
    with a line break is YAML text; a string ending in ``.yaml``/``.yml`` that is no file is an
    error; anything else is the name of a strategy in the backend's strategies directory.
    """
    if isinstance(strategy, Path) or (
        "\n" not in strategy and strategy.endswith((".yaml", ".yml"))
    ):
        path = Path(strategy)
        if not path.is_file():
            raise KtrdrClientError(f"strategy file {path} does not exist")
        return {"strategy_yaml": path.read_text()}
    if "\n" in strategy:
        return {"strategy_yaml": strategy}
    if Path(strategy).is_file():
        return {"strategy_yaml": Path(strategy).read_text()}
    return {"strategy_name": strategy}


class TrainingRun:
    """A started operation: ``wait()`` for its result, ``cancel()`` it, or read ``info()``."""

    def __init__(self, client: TrainingClient, operation: OperationInfo) -> None:
        self._client = client
        self.operation = operation

    @property
    def operation_id(self) -> str:
        return self.operation.operation_id

    def info(self) -> OperationInfo:
        self.operation = self._client.operation(self.operation_id)
        return self.operation

    def wait(self, *, progress: bool = True, check: bool = True) -> TrainingResult:
        return self._client.watch(self.operation_id, progress=progress, check=check)

    def cancel(self, reason: str = "cancelled from the client") -> OperationInfo:
        return self._client.cancel(self.operation_id, reason=reason)

    def __repr__(self) -> str:
        op = self.operation
        return f"TrainingRun({op.operation_id!r}, status={op.status!r}, mode={op.mode!r})"


class TrainingClient(ModelCalls, SweepCalls, HostCalls):
    """A synchronous client of the ``Backend`` service (safe in Jupyter's event loop).

    The model methods (``get_model``, ``download_model``, ``delete_model``, ``set_alias``,
    ``tag_model``, ``models``) come from ``ktrdr.client.models.ModelCalls``; the sweep calls
    (``sweep``, ``create_sweep``, ``get_sweep``, ...) from ``SweepCalls``; ``hosts()`` from
    ``HostCalls``."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout_s: float = 10.0,
        channel: grpc.Channel | None = None,
        token: str | None = None,
        tls: ClientTLS | None = None,
    ) -> None:
        """``token``: see ``ktrdr.client.connection`` for where it is found when omitted;
        ``tls``: ``ClientTLS`` (default from ``$KTRDR_TLS_*``: plaintext unless set)."""
        self.address = address or default_backend_address()
        self.timeout_s = timeout_s
        _start_tracing()
        self._own_channel = channel is None
        # The channel's TLS settings (None for a channel given by the caller: unknown), for
        # naming the cause of a failed connection.
        self.tls: ClientTLS | None = None
        if channel is None:
            self.tls = tls if tls is not None else client_tls()
        self.channel: grpc.Channel = channel or sync_channel(
            self.address,
            options=grpc_options(),
            tls=self.tls,
            token=resolve_token(self.address, token),
        )
        # The generated stub, for calls this class does not wrap.
        self.backend_stub = backend_pb2_grpc.BackendStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_channel:
            self.channel.close()

    def __enter__(self) -> TrainingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrainingClient({self.address!r})"

    def _call(
        self, method: Callable[..., Any], request: Any, timeout_s: float | None = None
    ) -> Any:
        with translate_errors(self.address, self.tls):
            return method(request, timeout=timeout_s or self.timeout_s)

    # -- health ----------------------------------------------------------------------------
    def health(self, service: str = "") -> str:
        """The backend's health status, e.g. ``"SERVING"`` (``grpc.health.v1`` Check)."""
        response = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return name

    def wait_until_serving(self, timeout_s: float = 30.0) -> None:
        """Block until the backend answers SERVING (``KtrdrServiceError`` after timeout_s)."""
        import time

        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if self.health() == "SERVING":
                    return
            except KtrdrClientError as exc:
                last = exc
            time.sleep(0.1)
        raise KtrdrClientError(f"backend {self.address} not serving after {timeout_s} s: {last}")

    # -- training --------------------------------------------------------------------------
    def create_training(
        self,
        strategy: str | Path,
        *,
        symbols: list[str] | None = None,
        timeframes: list[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        mode: str | None = None,
        require_gpu: bool = False,
        seed: int | None = None,
        device: str | None = None,
        tags: list[str] | None = None,
        fields: Mapping[str, Any] | None = None,
        set_fields: Sequence[str] = (),
    ) -> OperationInfo:
        """Start a training operation and return it at once (mode chosen, with the reason).

        ``fields`` changes strategy fields by path (``{"model.training.learning_rate": 0.01,
        "indicators[0].period": 10}``); ``set_fields`` takes ``PATH=VALUE`` strings with YAML
        values, as ``ktrdr train --set`` does. The backend validates them like the YAML.
        """
        request = backend_pb2.CreateTrainingRequest(
            field_overrides=field_overrides_to_proto(fields, set_fields),
            overrides=overrides_to_proto(
                symbols=symbols,
                timeframes=timeframes,
                start_date=start,
                end_date=end,
                seed=seed,
                device=device,
            ),
            execution_mode=mode_to_proto(mode),  # type: ignore[arg-type]
            require_gpu=require_gpu,
            tags=list(tags or []),
            **strategy_source(strategy),
        )
        response = self._call(self.backend_stub.CreateTraining, request)
        return OperationInfo.from_proto(response.operation)

    @overload
    def train(
        self,
        strategy: str | Path,
        *,
        symbols: list[str] | None = ...,
        timeframes: list[str] | None = ...,
        start: str | None = ...,
        end: str | None = ...,
        mode: str | None = ...,
        require_gpu: bool = ...,
        seed: int | None = ...,
        device: str | None = ...,
        tags: list[str] | None = ...,
        fields: Mapping[str, Any] | None = ...,
        set_fields: Sequence[str] = ...,
        progress: bool = ...,
        wait: Literal[True] = ...,
        check: bool = ...,
    ) -> TrainingResult: ...

    @overload
    def train(
        self,
        strategy: str | Path,
        *,
        symbols: list[str] | None = ...,
        timeframes: list[str] | None = ...,
        start: str | None = ...,
        end: str | None = ...,
        mode: str | None = ...,
        require_gpu: bool = ...,
        seed: int | None = ...,
        device: str | None = ...,
        tags: list[str] | None = ...,
        fields: Mapping[str, Any] | None = ...,
        set_fields: Sequence[str] = ...,
        progress: bool = ...,
        wait: Literal[False],
        check: bool = ...,
    ) -> TrainingRun: ...

    def train(
        self,
        strategy: str | Path,
        *,
        symbols: list[str] | None = None,
        timeframes: list[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        mode: str | None = None,
        require_gpu: bool = False,
        seed: int | None = None,
        device: str | None = None,
        tags: list[str] | None = None,
        fields: Mapping[str, Any] | None = None,
        set_fields: Sequence[str] = (),
        progress: bool = True,
        wait: bool = True,
        check: bool = True,
    ) -> TrainingResult | TrainingRun:
        """Train a strategy: a file path, YAML text, or a name from the backend's strategies.

        ``mode`` is ``"auto"``, ``"local"``, ``"host"`` or None (the backend's default);
        ``tags`` are given to the stored model.
        ``fields`` / ``set_fields`` change strategy fields by path (see ``create_training``).
        With ``wait=True`` (default) shows progress and returns the ``TrainingResult``; with
        ``check=True`` a failed or cancelled run raises ``OperationFailedError``. With
        ``wait=False`` returns a ``TrainingRun`` at once. Interrupting the wait
        (KeyboardInterrupt) asks the backend to cancel the operation, then re-raises.
        """
        # With tracing on, the call is the root of the operation's trace (or continues the
        # caller's current span).
        with tracing.span("train", {"ktrdr.backend": self.address}) as span:
            operation = self.create_training(
                strategy,
                symbols=symbols,
                timeframes=timeframes,
                start=start,
                end=end,
                mode=mode,
                require_gpu=require_gpu,
                seed=seed,
                device=device,
                tags=tags,
                fields=fields,
                set_fields=set_fields,
            )
            if span is not None:
                span.set_attribute("ktrdr.operation_id", operation.operation_id)
            run = TrainingRun(self, operation)
            if not wait:
                return run
            try:
                return self.watch(operation.operation_id, progress=progress, check=check)
            except KeyboardInterrupt:
                with contextlib.suppress(KtrdrClientError):
                    self.cancel(operation.operation_id, reason="interrupted in the client")
                raise

    def events(
        self,
        operation_id: str,
        *,
        timeout_s: float | None = None,
        interrupt: CtrlC | None = None,
    ) -> Iterator[backend_pb2.WatchOperationResponse]:
        """The raw ``WatchOperation`` stream: current state first, then events to the end.

        With ``interrupt``, Ctrl-C cancels the stream and this raises ``KeyboardInterrupt``.
        """
        stream = self.backend_stub.WatchOperation(
            backend_pb2.WatchOperationRequest(operation_id=operation_id), timeout=timeout_s
        )
        remove = interrupt.on_interrupt(stream.cancel) if interrupt is not None else None
        try:
            for message in stream:
                if interrupt is not None and interrupt.interrupted:
                    raise KeyboardInterrupt
                yield message
        except grpc.RpcError as exc:
            if interrupt is not None and interrupt.interrupted:
                raise KeyboardInterrupt from None
            raise service_error(exc, self.address, self.tls) from None
        finally:
            if remove is not None:
                remove()
            stream.cancel()

    def watch(
        self,
        operation_id: str,
        *,
        progress: bool = True,
        check: bool = False,
        on_event: EventCallback | None = None,
        timeout_s: float | None = None,
        interrupt: CtrlC | None = None,
    ) -> TrainingResult:
        """Follow an operation to its end (progress bars unless ``progress=False``).

        With ``interrupt`` (a ``CtrlC`` in effect), Ctrl-C ends the watch with
        ``KeyboardInterrupt``; the operation goes on until cancelled.
        """
        display = None
        if progress:
            op = self.operation(operation_id)
            since = op.started or op.created
            display = ProgressDisplay(started=since.timestamp() if since else None)
        epochs: list[dict[str, float]] = []
        try:
            for message in self.events(operation_id, timeout_s=timeout_s, interrupt=interrupt):
                event = message.event
                if event.kind == common_pb2.PROGRESS_KIND_EPOCH and event.epoch:
                    epochs.append({"epoch": float(event.epoch), **dict(event.metrics)})
                if display is not None:
                    display(event)
                if on_event is not None:
                    on_event(event)
                if is_terminal(event):
                    break
        finally:
            if display is not None:
                display.close()
        result = TrainingResult(
            self._operation_when_finished(operation_id), epochs, fetch=self.download_model
        )
        return result.raise_for_status() if check else result

    def _operation_when_finished(self, operation_id: str) -> OperationInfo:
        """GetOperation after the stream ended (retried briefly until it reports the end)."""
        import time

        info = self.operation(operation_id)
        deadline = time.monotonic() + 5.0
        while not info.is_finished and time.monotonic() < deadline:
            time.sleep(0.1)
            info = self.operation(operation_id)
        return info

    def cancel(self, operation_id: str, *, reason: str = "") -> OperationInfo:
        """Ask the backend to cancel; returns the operation in the state it reached."""
        response = self._call(
            self.backend_stub.CancelOperation,
            backend_pb2.CancelOperationRequest(operation_id=operation_id, reason=reason),
        )
        return OperationInfo.from_proto(response.operation)

    # -- queries ---------------------------------------------------------------------------
    def operation(self, operation_id: str) -> OperationInfo:
        response = self._call(
            self.backend_stub.GetOperation,
            backend_pb2.GetOperationRequest(operation_id=operation_id),
        )
        return OperationInfo.from_proto(response.operation)

    def operations(
        self,
        *,
        status: str | None = None,
        strategy: str | None = None,
        limit: int | None = 50,
        owner: str | None = None,
    ) -> list[OperationInfo]:
        """Operations, newest first, filtered by status, strategy and owner (the token name
        that created them; ``"me"`` for this client's) (all pages up to limit)."""
        out: list[OperationInfo] = []
        token = ""
        while True:
            page_size = min(limit - len(out), 100) if limit else 100
            response = self._call(
                self.backend_stub.ListOperations,
                backend_pb2.ListOperationsRequest(
                    status=status_to_proto(status),  # type: ignore[arg-type]
                    strategy_name=strategy or "",
                    owner=owner or "",
                    page_size=page_size,
                    page_token=token,
                ),
            )
            out.extend(OperationInfo.from_proto(op) for op in response.operations)
            token = response.next_page_token
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def model(self, strategy: str, version: int | None = None) -> ModelInfo:
        """One stored model: the given version, or the latest."""
        versions = [m for m in self.models(strategy) if m.strategy == strategy]
        if not versions:
            raise KtrdrClientError(f"no stored models for strategy {strategy!r}")
        if version is None:
            return max(versions, key=lambda m: m.version)
        for model in versions:
            if model.version == version:
                return model
        known = ", ".join(str(m.version) for m in versions)
        raise KtrdrClientError(f"{strategy} has no version {version} (versions: {known})")

    def strategies(self) -> list[StrategyInfo]:
        response = self._call(self.backend_stub.ListStrategies, backend_pb2.ListStrategiesRequest())
        return [StrategyInfo.from_proto(s) for s in response.strategies]

    # -- configuration ---------------------------------------------------------------------
    def config(self) -> backend_pb2.TrainingConfig:
        """The backend's training configuration (default mode, hosts, limits)."""
        response = self._call(
            self.backend_stub.GetTrainingConfig, backend_pb2.GetTrainingConfigRequest()
        )
        config: backend_pb2.TrainingConfig = response.config
        return config

    @property
    def default_mode(self) -> str:
        """The backend's default execution mode: ``"auto"``, ``"local"`` or ``"host"``."""
        return mode_name(self.config().default_mode)

    @default_mode.setter
    def default_mode(self, mode: str) -> None:
        self.set_default_mode(mode)

    def set_default_mode(self, mode: str) -> tuple[str, str]:
        """Change the default mode until the backend restarts; returns (previous, new)."""
        response = self._call(
            self.backend_stub.UpdateTrainingConfig,
            backend_pb2.UpdateTrainingConfigRequest(
                default_mode=mode_to_proto(mode)  # type: ignore[arg-type]
            ),
        )
        return mode_name(response.previous_default_mode), mode_name(response.default_mode)


__all__ = [
    "BACKEND_ADDRESS_ENV",
    "DEFAULT_BACKEND_ADDRESS",
    "TrainingClient",
    "TrainingRun",
    "default_backend_address",
    "strategy_source",
]
