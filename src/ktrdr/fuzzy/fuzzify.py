"""Turning one indicator series into its fuzzy membership columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from ktrdr.fuzzy.membership import membership

if TYPE_CHECKING:  # numpy and pandas load when a series is fuzzified, not when sets are checked
    import numpy as np
    import pandas as pd


class FuzzySetLike(Protocol):
    """What :func:`fuzzify` reads from a set (``ktrdr.config.strategy.FuzzySetConfig``)."""

    @property
    def type(self) -> str: ...

    @property
    def parameters(self) -> Sequence[float]: ...


def fuzzify_into(out: np.ndarray, values: np.ndarray, sets: Mapping[str, FuzzySetLike]) -> None:
    """Write the membership of ``values`` in each set, in the YAML's order, into ``out``'s columns.

    ``out`` has one column per set (a slice of a larger feature block, typically column-major
    so each column is contiguous); ``values`` is float64 with NaN where the indicator has none.
    """
    for j, fuzzy_set in enumerate(sets.values()):
        out[:, j] = membership(fuzzy_set.type, fuzzy_set.parameters, values)


def fuzzify(values: pd.Series, sets: Mapping[str, FuzzySetLike], prefix: str) -> pd.DataFrame:
    """One column ``f"{prefix}_{set_name}"`` per set, in the YAML's order, same index."""
    import numpy as np
    import pandas as pd

    raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
    block = np.empty((len(raw), len(sets)), dtype=np.float64, order="F")
    fuzzify_into(block, raw, sets)
    columns = [f"{prefix}_{set_name}" for set_name in sets]
    return pd.DataFrame(block, index=values.index, columns=columns, copy=False)
