"""Validation problems as ``field.path: problem`` lines.

Validators in :mod:`ktrdr.config.strategy` raise :class:`ConfigProblems` when they find
several problems, each with a path relative to the validated object; pydantic keeps the
exception in the error's context, and :func:`format_validation_error` expands it. Every other
pydantic error is reworded to the same format (``must be > 0``, ``required``...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ktrdr.echo import short_repr, short_text

Loc = tuple[str | int, ...]


class ConfigProblems(ValueError):
    """Several problems found by one validator, each ``(relative path, message)``."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems: list[tuple[Loc, str]] = list(problems)
        super().__init__("; ".join(_line(loc, msg) for loc, msg in self.problems))


def format_path(loc: Sequence[str | int]) -> str:
    """``('indicators', 2, 'name')`` -> ``indicators[2].name``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        else:
            part = short_text(str(part), 60)
            text += f".{part}" if text else part
    return text


def format_validation_error(exc: ValidationError) -> list[str]:
    """Every error of ``exc`` as ``field.path: problem``."""
    lines: list[str] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigProblems):
            lines.extend(_line(loc + sub, msg) for sub, msg in cause.problems)
        else:
            lines.append(_line(loc, _message(error)))
    return lines


def cross_check(
    indicator_ids: Sequence[str | None], fuzzy_set_counts: Mapping[str, int]
) -> list[tuple[Loc, str]]:
    """Problems between ``indicators`` and ``fuzzy_sets``, both keyed by indicator id.

    ``indicator_ids[i]`` is the id of ``indicators[i]`` (None when it has none);
    ``fuzzy_set_counts`` maps each ``fuzzy_sets`` key to its number of sets.
    """
    problems: list[tuple[Loc, str]] = []
    first_seen: dict[str, int] = {}
    for position, ind_id in enumerate(indicator_ids):
        if ind_id is None:
            continue
        if ind_id in first_seen:
            problems.append(
                (
                    ("indicators", position),
                    f"duplicate indicator id {short_repr(ind_id)} "
                    f"(also indicators[{first_seen[ind_id]}]); "
                    "give each a distinct feature_id",
                )
            )
        else:
            first_seen[ind_id] = position
    declared = short_text(", ".join(first_seen), 300) or "(none)"
    for key in fuzzy_set_counts:
        if key not in first_seen:
            problems.append(
                (
                    ("fuzzy_sets", key),
                    f"fuzzy sets for undeclared indicator {short_repr(key)}; "
                    "declared indicator ids: "
                    f"{declared}",
                )
            )
    if first_seen and not any(fuzzy_set_counts.get(i, 0) for i in first_seen):
        problems.append((("fuzzy_sets",), "no indicator has fuzzy sets; there are no features"))
    return problems


def _nearest(error: Mapping[str, Any]) -> str:
    """``; did you mean `x`?`` with the closest known key at the error's place, or ``""``."""
    import difflib

    from ktrdr.config import strategy

    loc = [part for part in error["loc"] if isinstance(part, str)]
    model: Any = strategy.StrategyConfig
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            continue  # a dict key (fuzzy set names...) or a list position
        model = _model_in(field.annotation)
        if model is None:
            return ""
    known = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6) if loc else []
    return f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known)}"


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation (``X | None``, ``list[X]``, ``dict[str, X]``)."""
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _line(loc: Sequence[str | int], message: str) -> str:
    return f"{format_path(loc) or '<strategy>'}: {message}"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _message(error: Mapping[str, Any]) -> str:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key" + _nearest(error)
    if kind == "value_error":
        return short_text(str(ctx.get("error", error["msg"])), 400)
    comparisons = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if kind in comparisons:
        op, key = comparisons[kind]
        return f"must be {op} {_number(ctx[key])}, got {short_repr(value)}"
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}, got {short_repr(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping, got {type(value).__name__}"
    if kind == "list_type":
        return f"must be a list, got {type(value).__name__}"
    message = str(error["msg"]).replace("Input should be", "must be")
    message = message[:1].lower() + message[1:]
    if "got" not in message and not isinstance(value, dict | list):
        message += f", got {short_repr(value)}"
    return message


__all__ = ["ConfigProblems", "cross_check", "format_path", "format_validation_error"]
