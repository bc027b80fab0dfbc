"""Fuzzy membership functions: triangular, trapezoidal, gaussian (vectorized, NaN-preserving).

Shoulders: a triangle whose peak equals one of its ends (``[a, a, c]`` or ``[a, c, c]``) and a
trapezoid whose plateau reaches one of its ends (``a == b`` or ``c == d``) stay at 1 beyond
that end, so RSI = 100 is fully "overbought" in ``[65, 100, 100]`` and RSI = 0 fully
"oversold" in ``[0, 0, 35]``. Inside a set's support the values equal scikit-fuzzy's
``trimf``/``trapmf``/``gaussmf``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ktrdr.echo import short_repr

if TYPE_CHECKING:  # numpy loads when degrees are computed; the services only check params
    import numpy as np

FUZZY_SET_TYPES: tuple[str, ...] = ("gaussian", "trapezoidal", "triangular")

_ARITY = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}
_LETTERS = {"triangular": "[a, b, c]", "trapezoidal": "[a, b, c, d]", "gaussian": "[mean, sigma]"}


def _fmt(params: Sequence[float]) -> str:
    return "[" + ", ".join(f"{p:g}" for p in params) + "]"


def check_fuzzy_params(type: str, params: Sequence[float]) -> str | None:
    """Why ``params`` do not make a valid set of this ``type`` (``None`` when they do)."""
    if type not in _ARITY:
        return f"unknown fuzzy set type {short_repr(type)}; known: {', '.join(FUZZY_SET_TYPES)}"
    try:
        values = [float(p) for p in params]
    except (TypeError, ValueError):
        return f"{type} parameters must be numbers, got {short_repr(params)}"
    if len(values) != _ARITY[type]:
        return f"{type} needs {_ARITY[type]} parameters {_LETTERS[type]}, got {len(values)}"
    if not all(math.isfinite(v) for v in values):
        return f"{type} parameters must be finite, got {_fmt(values)}"
    if type == "triangular":
        a, b, c = values
        if not a <= b <= c:
            return f"triangular needs a <= b <= c, got {_fmt(values)}"
        if a == c:
            return f"triangular needs a < c (a single point is not a set), got {_fmt(values)}"
    elif type == "trapezoidal":
        a, b, c, d = values
        if not a <= b <= c <= d:
            return f"trapezoidal needs a <= b <= c <= d, got {_fmt(values)}"
        if a == d:
            return f"trapezoidal needs a < d (a single point is not a set), got {_fmt(values)}"
        if a == b and c == d:
            return (
                "trapezoidal with a == b and c == d would be 1 everywhere (both ends are "
                f"shoulders); got {_fmt(values)}"
            )
    else:
        _mean, sigma = values
        if sigma <= 0:
            return f"gaussian needs sigma > 0, got {_fmt(values)}"
    return None


def membership(type: str, params: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Membership degrees (0..1) of ``values`` in the set; NaN in gives NaN out."""
    import numpy as np

    problem = check_fuzzy_params(type, params)
    if problem is not None:
        raise ValueError(problem)
    x = np.asarray(values, dtype=np.float64)
    p = [float(v) for v in params]
    if type == "gaussian":
        mean, sigma = p
        return np.exp(-((x - mean) ** 2) / (2.0 * sigma**2))
    a, b, c, d = (p[0], p[1], p[1], p[2]) if type == "triangular" else p
    return _trapezoid(x, a, b, c, d)


def _trapezoid(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """min(rising edge, falling edge) clipped to [0, 1]; an edge of zero width is a shoulder.

    Each edge is computed the way ``np.interp`` computes a segment (slope * (x - start) +
    start value), in place, a few passes over ``x``; NaN stays NaN through every step.
    """
    import numpy as np

    out = np.ones_like(x) if a == b else np.multiply(x - a, 1.0 / (b - a))
    if c != d:
        falling = np.subtract(x, c)
        falling *= 1.0 / (d - c)
        np.subtract(1.0, falling, out=falling)
        np.minimum(out, falling, out=out)
    elif a == b:  # both shoulders: refused by check_fuzzy_params
        raise ValueError("a set with two shoulders is 1 everywhere")
    # (with a shoulder on the left, the falling edge carries NaN into ``out``)
    return np.clip(out, 0.0, 1.0, out=out)
