"""Loading strategies from YAML, applying command-line overrides.

Every entry point raises ``StrategyConfigError`` whose ``errors`` list every problem found,
each as ``field.path: problem``. YAML syntax errors and duplicate keys name the line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ktrdr.config.problems import cross_check, format_path, format_validation_error
from ktrdr.config.safe_yaml import (
    DEFAULT_MAX_STRATEGY_BYTES,
    SafeYamlLoader,
    cap_problems,
    check_file_size,
    load_strategy_yaml,
)
from ktrdr.config.strategy import StrategyConfig
from ktrdr.echo import short_repr
from ktrdr.errors import StrategyConfigError

logger = logging.getLogger(__name__)


def load_strategy(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES,
    field_overrides: Sequence[tuple[str, Any]] = (),
) -> StrategyConfig:
    """Read and validate the strategy YAML at ``path`` (at most ``max_bytes`` bytes), with
    ``field_overrides`` (``(path, value)``) set first, as ``parse_strategy_with_fields`` does."""
    path = Path(path)
    try:
        check_file_size(path, max_bytes)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_strategy_with_fields(text, field_overrides, str(path), max_bytes=max_bytes)[1]


def parse_strategy(
    text: str, source: str = "<string>", *, max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES
) -> StrategyConfig:
    """Validate a strategy given as YAML text (``source`` names it in messages).

    The text is read safely (:mod:`ktrdr.config.safe_yaml`): at most ``max_bytes`` bytes
    (``StrategyTooLargeError``), no anchors/aliases, no odd tags, bounded nesting.
    """
    data = load_strategy_yaml(text, source=source, max_bytes=max_bytes, loader=_StrictLoader)
    if data is None:
        raise StrategyConfigError(f"{source}: the strategy is empty")
    return strategy_from_dict(data, source)


def parse_strategy_with_fields(
    text: str,
    field_overrides: Sequence[tuple[str, Any]],
    source: str = "<string>",
    *,
    max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES,
) -> tuple[str, StrategyConfig]:
    """``parse_strategy`` with fields changed by path (:mod:`ktrdr.config.field_overrides`).

    Returns the strategy as trained (the YAML text with the overrides written in; ``text``
    itself when there are none) and its validated config.
    """
    if not field_overrides:
        return text, parse_strategy(text, source, max_bytes=max_bytes)
    from ktrdr.config.field_overrides import set_fields

    data = load_strategy_yaml(text, source=source, max_bytes=max_bytes, loader=_StrictLoader)
    if not isinstance(data, Mapping):
        raise StrategyConfigError(f"{source}: a strategy must be a mapping of keys to values")
    data = set_fields(data, field_overrides)
    config = strategy_from_dict(data, source)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), config


def strategy_from_dict(data: Any, source: str = "<dict>") -> StrategyConfig:
    """Validate a strategy given as a mapping (already parsed YAML)."""
    if not isinstance(data, Mapping):
        raise StrategyConfigError(
            f"{source}: a strategy must be a mapping of keys to values, got {type(data).__name__}"
        )
    try:
        config = StrategyConfig.model_validate(dict(data))
    except ValidationError as exc:
        errors = format_validation_error(exc)
        if any(error["loc"] for error in exc.errors()):
            # Field errors stop pydantic before the cross-checks; run those on the raw data.
            errors += [f"{format_path(loc)}: {msg}" for loc, msg in _raw_cross_check(data)]
        raise StrategyConfigError(cap_problems(errors)) from None
    logger.debug("strategy %r from %s is valid", config.name, source)
    return config


def apply_overrides(
    cfg: StrategyConfig,
    *,
    symbols: Sequence[str] | str | None = None,
    timeframes: Sequence[str] | str | None = None,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
    seed: int | None = None,
) -> StrategyConfig:
    """A copy of ``cfg`` with command-line overrides, validated again.

    ``symbols`` and ``timeframes`` are lists or comma-separated strings; one symbol or
    timeframe gives ``mode: single``. With several timeframes the first is the base.
    """
    data = cfg.model_dump()
    training_data = data["training_data"]
    if symbols is not None:
        names = _split(symbols)
        if len(names) == 1:
            training_data["symbols"] = {"mode": "single", "symbol": names[0]}
        else:
            training_data["symbols"] = {"mode": "multi_symbol", "list": names}
    if timeframes is not None:
        frames = _split(timeframes)
        if len(frames) == 1:
            training_data["timeframes"] = {"mode": "single", "timeframe": frames[0]}
        else:
            training_data["timeframes"] = {
                "mode": "multi_timeframe",
                "list": frames,
                "base_timeframe": frames[0] if frames else None,
            }
    if start_date is not None:
        training_data["start_date"] = start_date
    if end_date is not None:
        training_data["end_date"] = end_date
    if seed is not None:
        data["seed"] = seed
    return strategy_from_dict(data, source="overrides")


def _split(values: Sequence[str] | str) -> list[str]:
    items = values.split(",") if isinstance(values, str) else list(values)
    return [item.strip() for item in items if item.strip()]


def _raw_cross_check(data: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """:func:`cross_check` on unvalidated data (entries it cannot read are skipped)."""
    indicators = data.get("indicators")
    fuzzy_sets = data.get("fuzzy_sets")
    if not isinstance(indicators, list) or not isinstance(fuzzy_sets, Mapping):
        return []
    ids: list[str | None] = []
    for entry in indicators:
        ident = None
        if isinstance(entry, Mapping):
            ident = entry.get("feature_id") or entry.get("name")
        ids.append(ident.strip().lower() if isinstance(ident, str) else None)
    counts = {
        str(key).lower(): len(sets) if isinstance(sets, Mapping) else 1
        for key, sets in fuzzy_sets.items()
    }
    return cross_check(ids, counts)


class _StrictLoader(SafeYamlLoader):
    """A SafeLoader that rejects duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = first_line.get(key)
        except TypeError:  # unhashable key: SafeLoader reports it below
            continue
        if seen is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {short_repr(key)} (first at line {seen})",
                key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


__all__ = [
    "apply_overrides",
    "load_strategy",
    "parse_strategy",
    "parse_strategy_with_fields",
    "strategy_from_dict",
]
