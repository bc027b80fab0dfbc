"""Strategies of a CreateTraining request: inline YAML or a file in the strategies directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.config import parse_strategy_with_fields
from ktrdr.config.field_overrides import MAX_FIELD_OVERRIDES, load_value, parse_field_path
from ktrdr.config.limits import WorkLimits, check_work_limits
from ktrdr.config.safe_yaml import DEFAULT_MAX_STRATEGY_BYTES, StrategyTooLargeError
from ktrdr.config.strategy import StrategyConfig
from ktrdr.echo import short_repr, short_text
from ktrdr.errors import StorageError, StrategyConfigError
from ktrdr.service.convert import apply_overrides_from_proto
from ktrdr.storage import check_strategy_name
from ktrdr.training.device import DEVICE_CHOICES
from ktrdr.training.v1 import backend_pb2 as pb

MAX_CUDA_INDEX = 63  # cuda:N beyond this names no real machine's GPU
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_SUFFIXES = (".yaml", ".yml")


def strategy_files(directory: Path) -> dict[str, Path]:
    """Strategy files by name (the file name without its suffix)."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.iterdir()) if p.suffix in _SUFFIXES and p.is_file()}


def _read_named(name: str, directory: Path, max_bytes: int) -> str:
    """The text of the strategy file ``name``; messages name the file, never the directory."""
    if not _FILE_NAME_RE.match(name) or ".." in name:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"strategy_name: {short_repr(name)} is not a strategy file name "
            "(letters, digits, '.', '_', '-')",
        )
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    files = strategy_files(directory)
    path = files.get(stem)
    if path is None:
        known = short_text(", ".join(files), 400) or "none"
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"strategy_name: no strategy {name!r} on this backend (available: {known}); "
            "or send the YAML text as strategy_yaml",
        )
    try:
        if path.stat().st_size > max_bytes:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"strategy_name: the strategy file {name!r} is too large: at most "
                f"{max_bytes} bytes, got {path.stat().st_size}",
            )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"strategy_name: {name!r} is not UTF-8 text"
        ) from None
    except OSError:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND, f"strategy_name: the strategy {name!r} cannot be read"
        ) from None


def field_overrides_from_request(request: pb.CreateTrainingRequest) -> list[tuple[str, Any]]:
    """``(path, value)`` of each ``field_overrides`` entry, values read as YAML.

    INVALID_ARGUMENT naming every entry that is malformed (too many, a bad path, a value that
    is not YAML or too long); the paths themselves are checked against the schema later.
    """
    entries = request.field_overrides
    if len(entries) > MAX_FIELD_OVERRIDES:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"field_overrides: at most {MAX_FIELD_OVERRIDES} entries, got {len(entries)}",
        )
    out: list[tuple[str, Any]] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        try:
            parse_field_path(entry.path)
        except ValueError as exc:
            problems.append(f"field_overrides[{i}].path: {exc}")
            continue
        try:
            out.append((entry.path, load_value(entry.value)))
        except ValueError as exc:
            problems.append(f"field_overrides[{i}].value ({entry.path}): {exc}")
    if problems:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems), problems)
    return out


def resolve_strategy(
    request: pb.CreateTrainingRequest,
    strategies_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES,
    limits: WorkLimits | None = None,
) -> tuple[str, StrategyConfig]:
    """The request's strategy text (with any ``field_overrides`` written in) and its
    validated config with all overrides applied.

    Blocking (parsing is CPU work): the backend calls it in a worker thread. Raises
    ``RequestError``: RESOURCE_EXHAUSTED for a text over ``max_bytes`` (checked before any
    parsing), INVALID_ARGUMENT with one ``field.path: problem`` per detail (YAML safety,
    schema, the work ``limits``), NOT_FOUND for an unknown strategy file.
    """
    which = request.WhichOneof("strategy")
    if which == "strategy_yaml":
        text, source = request.strategy_yaml, "strategy_yaml"
    elif which == "strategy_name":
        text, source = _read_named(request.strategy_name, strategies_dir, max_bytes), which
    else:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "strategy: set strategy_yaml (the YAML text) or strategy_name (a strategy file "
            "of the backend; ListStrategies shows them)",
        )
    fields = field_overrides_from_request(request)
    try:
        text, config = parse_strategy_with_fields(text, fields, source, max_bytes=max_bytes)
        config = apply_overrides_from_proto(config, request.overrides)
        check_strategy_name(config.name)
        if problems := check_work_limits(config, limits):
            raise StrategyConfigError(problems)
    except StrategyTooLargeError as exc:
        raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
    except StrategyConfigError as exc:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid strategy: {exc}", exc.errors
        ) from None
    except StorageError as exc:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"name: {exc}") from None
    device = request.overrides.device
    base, colon, index = device.lower().partition(":")
    if device and (
        base not in DEVICE_CHOICES
        or (colon and (base != "cuda" or not index.isdigit() or int(index) > MAX_CUDA_INDEX))
    ):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"overrides.device: {short_repr(device)} is not one of {', '.join(DEVICE_CHOICES)} "
            f"(or cuda:N, N from 0 to {MAX_CUDA_INDEX})",
        )
    return text, config
