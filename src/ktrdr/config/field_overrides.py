"""Changing any strategy field by its dotted path: ``model.training.learning_rate=0.01``.

Paths are the YAML's own (what validation errors name): mapping keys joined by ``.``, list
positions in brackets, e.g. ``indicators[0].period`` or ``fuzzy_sets.rsi.oversold.parameters``.
Values are YAML (or JSON, its subset): ``0.01``, ``[64, 32]``, ``ema``,
``{type: triangular, parameters: [0, 0, 30]}``, read with the strategy's safe YAML rules.

Overrides are applied to the parsed YAML before validation, in order, so the result is
validated exactly as a file with those values would be: an unknown key is refused with the
nearest known one, a bad value is named by its path. A missing mapping on the way is created
(``model.training.early_stopping.patience`` works without an ``early_stopping`` block); a list
position must exist.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr.config.problems import format_path
from ktrdr.config.safe_yaml import load_strategy_yaml
from ktrdr.echo import short_repr
from ktrdr.errors import StrategyConfigError

MAX_FIELD_OVERRIDES = 64  # per request
MAX_PATH_CHARS = 200
MAX_VALUE_BYTES = 4096

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)((?:\[\d{1,4}\])*)")
_INDEX = re.compile(r"\[(\d{1,4})\]")

Path = tuple[str | int, ...]


def parse_field_path(path: str) -> Path:
    """``"indicators[0].period"`` -> ``("indicators", 0, "period")``; ValueError if malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("empty field path")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"field path longer than {MAX_PATH_CHARS} characters")
    parts: list[str | int] = []
    for segment in path.strip().split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise ValueError(
                f"malformed field path {short_repr(path)}: use keys joined by '.' and list "
                "positions in brackets, e.g. indicators[0].period"
            )
        parts.append(match.group(1))
        parts.extend(int(i) for i in _INDEX.findall(match.group(2)))
    return tuple(parts)


def load_value(text: str) -> Any:
    """A YAML value (scalar, flow list or mapping), read with the strategy's safe rules."""
    if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ValueError(f"value longer than {MAX_VALUE_BYTES} bytes")
    try:
        return load_strategy_yaml(text, source="value", max_bytes=MAX_VALUE_BYTES)
    except StrategyConfigError as exc:
        raise ValueError(str(exc).removeprefix("value: ")) from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"PATH=VALUE"`` (what ``--set`` takes) -> ``(path, value)``; ``ValueError`` if malformed."""
    path, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{short_repr(text)}: expected PATH=VALUE, e.g. model.training.epochs=20")
    parse_field_path(path)
    return path.strip(), load_value(value)


def set_fields(data: Mapping[str, Any], overrides: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the parsed strategy ``data`` with each ``(path, value)`` set, in order.

    Raises ``StrategyConfigError`` listing every override that cannot be applied, each as
    ``path: problem``.
    """
    if len(overrides) > MAX_FIELD_OVERRIDES:
        raise StrategyConfigError(
            f"field overrides: at most {MAX_FIELD_OVERRIDES} per request, got {len(overrides)}"
        )
    result: dict[str, Any] = copy.deepcopy(dict(data))
    problems: list[str] = []
    for text, value in overrides:
        try:
            path = parse_field_path(text)
        except ValueError as exc:
            problems.append(f"{short_repr(text)}: {exc}")
            continue
        if problem := _set(result, path, copy.deepcopy(value)):
            problems.append(f"{format_path(path)}: {problem}")
    if problems:
        raise StrategyConfigError(problems)
    return result


def _set(root: dict[str, Any], path: Path, value: Any) -> str | None:
    """Set ``value`` at ``path`` under ``root``; the problem when it cannot be."""
    node: Any = root
    for depth, key in enumerate(path):
        where = format_path(path[:depth]) or "the strategy"
        last = depth == len(path) - 1
        if isinstance(key, int):
            if not isinstance(node, list):
                return f"{where} is {_kind(node)}, not a list"
            if key >= len(node):
                return f"{where} has {len(node)} entries, no position {key}"
            if last:
                node[key] = value
                return None
            node = node[key]
            continue
        if not isinstance(node, dict):
            return f"{where} is {_kind(node)}, not a mapping"
        if last:
            node[key] = value
            return None
        if node.get(key) is None:  # missing or empty: a new mapping, unless a list is next
            following = path[depth + 1]
            if isinstance(following, int):
                return f"{format_path(path[: depth + 1])} does not exist (no position {following})"
            node[key] = {}
        node = node[key]
    return None


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "a list"
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, bool):
        return "true/false"
    if isinstance(node, int | float):
        return "a number"
    if node is None:
        return "empty"
    return "text"


__all__ = [
    "MAX_FIELD_OVERRIDES",
    "load_value",
    "parse_assignment",
    "parse_field_path",
    "set_fields",
]
