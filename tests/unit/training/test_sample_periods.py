"""Which part of a model's training data bars fall in (``predict``'s warning line): only the
train part is in-sample; the test period is out-of-sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

# A real bundle's record: data 2017-04-19 09:00 .. 2018-02-07 15:00, validation from
# 2017-11-09 14:00, test from 2017-12-22 14:00 (EURUSD 1h).
METADATA = json.loads(
    (Path(__file__).parents[2] / "data" / "bundles" / "tiny_rsi" / "metadata.json").read_text()
)


if TYPE_CHECKING:
    import pandas as pd


def sample_periods_line(*args: object) -> str | None:
    """``ktrdr.training.sample_periods.sample_periods_line``, imported when a test runs (it
    imports pandas, which collecting the tests must not)."""
    from ktrdr.training.sample_periods import sample_periods_line as line

    return line(*args)  # type: ignore[arg-type]


def hours(start: str, count: int) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.date_range(start, periods=count, freq="h", tz="UTC")


def test_test_period_bars_are_out_of_sample_and_only_train_bars_in_sample():
    bars = hours("2017-11-09 10:00", 4).append(hours("2017-12-22 12:00", 4))
    # 4 train (10:00..13:00), then 2 validation (12:00, 13:00 on 12-22), 2 test (14:00, 15:00)
    assert sample_periods_line(bars, METADATA, "eurusd", "1h") == (
        "8 bars: 4 in-sample (the train part the model was fit on, 2017-04-19 .. 2017-11-09); "
        "2 in the validation period (not fit on, but it chose the kept epoch: not a clean "
        "out-of-sample); 2 out-of-sample (test period, 2017-12-22 .. 2018-02-07)"
    )


def test_only_test_and_later_bars_say_nothing_is_in_sample():
    bars = hours("2018-02-07 13:00", 5)  # 13:00, 14:00, 15:00 in the test period; 2 after
    line = sample_periods_line(bars, METADATA, "EURUSD", "1h")
    assert line == (
        "5 bars: 3 out-of-sample (test period, 2017-12-22 .. 2018-02-07); "
        "2 out-of-sample (after the training data)"
    )
    assert "in-sample" not in line.replace("out-of-sample", "")


def test_bars_before_the_data_and_models_without_a_split():
    bars = hours("2017-04-19 07:00", 3)
    assert sample_periods_line(bars, METADATA, "EURUSD", "1h") == (
        "3 bars: 2 out-of-sample (before the training data, which starts 2017-04-19); "
        "1 in-sample (the train part the model was fit on, 2017-04-19 .. 2017-11-09)"
    )
    older = {"data": METADATA["data"]}  # a bundle that recorded no split boundaries
    assert sample_periods_line(bars, older, "EURUSD", "1h") == (
        "1 of 3 bars fall inside the training data's period (2017-04-19 .. 2018-02-07); the "
        "model records no split, so its train, validation and test parts cannot be told apart"
    )
    assert sample_periods_line(bars, METADATA, "GBPUSD", "1h") is None
