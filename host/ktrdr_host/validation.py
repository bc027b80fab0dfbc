"""Checking a StartTrainingRequest before anything streams: every problem names its field.

Also home of ``RequestRefused``, the one error type the host's RPC methods raise; the
server's error boundary answers it as its gRPC status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from ktrdr.config import parse_strategy
from ktrdr.config.limits import WorkLimits, check_work_limits
from ktrdr.config.safe_yaml import DEFAULT_MAX_STRATEGY_BYTES, StrategyTooLargeError
from ktrdr.config.strategy import StrategyConfig
from ktrdr.echo import short_repr
from ktrdr.errors import DeviceError, StrategyConfigError
from ktrdr.service.convert import apply_overrides_from_proto
from ktrdr.service.errors import StatusError
from ktrdr.training.device import DEVICE_CHOICES, DeviceInfo, resolve_device
from ktrdr.training.v1 import common_pb2, host_pb2

SESSION_ID_MAX_CHARS = 128
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})\Z")
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
# Library field paths of the overridable strategy fields -> the request's field paths.
_OVERRIDE_FIELDS = {
    "training_data.symbols": "overrides.symbols",
    "training_data.timeframes": "overrides.timeframes",
    "training_data.start_date": "overrides.start_date",
    "training_data.end_date": "overrides.end_date",
    "seed": "overrides.seed",
}


class RequestRefused(StatusError):
    """A request the host will not serve; ``code`` is the gRPC status to answer with."""


def invalid(*problems: str) -> RequestRefused:
    return RequestRefused(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))


@dataclass(frozen=True)
class SessionSpec:
    """A validated StartTrainingRequest: what a new session needs."""

    session_id: str
    strategy_yaml: str
    config: StrategyConfig
    device: DeviceInfo
    results_target: str


def validate_session_id(session_id: str) -> str:
    if not session_id:
        raise invalid("session_id: must not be empty (the backend sends its operation id)")
    if len(session_id) > SESSION_ID_MAX_CHARS:
        raise invalid(
            f"session_id: at most {SESSION_ID_MAX_CHARS} characters, got {len(session_id)}"
        )
    if _CONTROL_OR_SPACE.search(session_id):
        raise invalid(
            f"session_id: must not contain spaces or control characters: {short_repr(session_id)}"
        )
    return session_id


def validate_results_target(target: str) -> str:
    if not target:
        raise invalid(
            "results_target: required: the backend's 'host:port' that receives the model "
            "with Backend.SubmitResults"
        )
    if target.startswith(_SCHEMES):
        return target
    match = _HOST_PORT.match(target)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise invalid(
            f"results_target: expected 'host:port' with a port 1-65535, got {short_repr(target)}"
        )
    return target


def parse_strategy_field(text: str, max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES) -> StrategyConfig:
    """The validated strategy; RESOURCE_EXHAUSTED over ``max_bytes`` (before parsing)."""
    if not text.strip():
        raise invalid("strategy_yaml: must not be empty (the strategy's KTRDR v2 YAML text)")
    try:
        return parse_strategy(text, source="strategy_yaml", max_bytes=max_bytes)
    except StrategyTooLargeError as exc:
        raise RequestRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
    except StrategyConfigError as exc:
        raise invalid(*(_prefixed("strategy_yaml", e) for e in exc.errors)) from None


def check_work_field(config: StrategyConfig, limits: WorkLimits | None) -> None:
    """INVALID_ARGUMENT naming every bound of ``limits`` the strategy exceeds."""
    if problems := check_work_limits(config, limits):
        raise invalid(*(_prefixed("strategy_yaml", p) for p in problems))


def apply_overrides_field(
    config: StrategyConfig, overrides: common_pb2.TrainingOverrides
) -> StrategyConfig:
    try:
        return apply_overrides_from_proto(config, overrides)
    except StrategyConfigError as exc:
        raise invalid(*(_override_problem(e) for e in exc.errors)) from None


def resolve_device_field(requested: str) -> DeviceInfo:
    """The device for ``requested`` ("" means the host's default, resolved by the caller)."""
    base = requested.strip().lower().split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise invalid(
            f"overrides.device: unknown device {short_repr(requested)}; choose one of "
            f"{', '.join(DEVICE_CHOICES)} (or cuda:N)"
        )
    try:
        return resolve_device(requested)
    except DeviceError as exc:
        raise RequestRefused(
            grpc.StatusCode.FAILED_PRECONDITION, f"overrides.device: {exc}"
        ) from None


def validate_start(
    request: host_pb2.StartTrainingRequest,
    default_device: str,
    *,
    max_strategy_bytes: int = DEFAULT_MAX_STRATEGY_BYTES,
    limits: WorkLimits | None = None,
) -> SessionSpec:
    """A ``SessionSpec`` for ``request``, or ``RequestRefused`` naming the first bad field.

    Blocking (parses the strategy): the servicer calls it in a worker thread.
    """
    session_id = validate_session_id(request.session_id)
    config = parse_strategy_field(request.strategy_yaml, max_strategy_bytes)
    if request.HasField("overrides"):
        config = apply_overrides_field(config, request.overrides)
    check_work_field(config, limits)
    device = resolve_device_field(request.overrides.device or default_device)
    target = validate_results_target(request.results_target)
    return SessionSpec(session_id, request.strategy_yaml, config, device, target)


def _prefixed(field: str, problem: str) -> str:
    if problem.startswith(f"{field}:"):
        return problem
    return f"{field}.{problem}"


def _override_problem(problem: str) -> str:
    for library_path, request_path in _OVERRIDE_FIELDS.items():
        if problem.startswith(library_path):
            return f"{request_path}: {problem.split(': ', 1)[-1]}"
    return f"overrides: {problem}"


__all__ = [
    "RequestRefused",
    "SessionSpec",
    "check_work_field",
    "invalid",
    "validate_results_target",
    "validate_session_id",
    "validate_start",
]
