"""Turning one indicator series into its fuzzy membership columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from ktrdr.fuzzy.membership import membership

if TYPE_CHECKING:  # pandas loads when a series is fuzzified, not when sets are checked
    import pandas as pd


class FuzzySetLike(Protocol):
    """What :func:`fuzzify` reads from a set (``ktrdr.config.strategy.FuzzySetConfig``)."""

    @property
    def type(self) -> str: ...

    @property
    def parameters(self) -> Sequence[float]: ...


def fuzzify(values: pd.Series, sets: Mapping[str, FuzzySetLike], prefix: str) -> pd.DataFrame:
    """One column ``f"{prefix}_{set_name}"`` per set, in the YAML's order, same index."""
    import pandas as pd

    raw = values.to_numpy(dtype="float64", na_value=float("nan"))
    columns = {
        f"{prefix}_{set_name}": membership(fuzzy_set.type, fuzzy_set.parameters, raw)
        for set_name, fuzzy_set in sets.items()
    }
    return pd.DataFrame(columns, index=values.index, dtype="float64")
