"""Strategies of a CreateTraining request: inline YAML or a file in the strategies directory."""

from __future__ import annotations

import re
from pathlib import Path

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.config import parse_strategy
from ktrdr.config.strategy import StrategyConfig
from ktrdr.errors import StorageError, StrategyConfigError
from ktrdr.service.convert import apply_overrides_from_proto
from ktrdr.storage import check_strategy_name
from ktrdr.training.device import DEVICE_CHOICES
from ktrdr.training.v1 import backend_pb2 as pb

_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SUFFIXES = (".yaml", ".yml")


def strategy_files(directory: Path) -> dict[str, Path]:
    """Strategy files by name (the file name without its suffix)."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.iterdir()) if p.suffix in _SUFFIXES and p.is_file()}


def _read_named(name: str, directory: Path) -> tuple[str, str]:
    if not _FILE_NAME_RE.match(name) or ".." in name:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"strategy_name: {name!r} is not a strategy file name (letters, digits, '.', '_', '-')",
        )
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    path = strategy_files(directory).get(stem)
    if path is None:
        known = ", ".join(strategy_files(directory)) or "none"
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"strategy_name: no strategy file {name!r} in {directory} (available: {known}); "
            "or send the YAML text as strategy_yaml",
        )
    return path.read_text(encoding="utf-8"), str(path)


def resolve_strategy(
    request: pb.CreateTrainingRequest, strategies_dir: Path
) -> tuple[str, StrategyConfig]:
    """The request's strategy text and its validated config with the overrides applied.

    Raises ``RequestError``: INVALID_ARGUMENT with one ``field.path: problem`` per detail,
    NOT_FOUND for an unknown strategy file.
    """
    which = request.WhichOneof("strategy")
    if which == "strategy_yaml":
        text, source = request.strategy_yaml, "strategy_yaml"
    elif which == "strategy_name":
        text, source = _read_named(request.strategy_name, strategies_dir)
    else:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "strategy: set strategy_yaml (the YAML text) or strategy_name (a file in the "
            f"backend's strategies directory {strategies_dir})",
        )
    try:
        config = parse_strategy(text, source=source)
        config = apply_overrides_from_proto(config, request.overrides)
        check_strategy_name(config.name)
    except StrategyConfigError as exc:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid strategy: {exc}", exc.errors
        ) from None
    except StorageError as exc:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"name: {exc}") from None
    device = request.overrides.device
    if device and device.split(":", 1)[0].lower() not in DEVICE_CHOICES:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"overrides.device: {device!r} is not one of {', '.join(DEVICE_CHOICES)} (or cuda:N)",
        )
    return text, config
