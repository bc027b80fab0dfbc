"""A KTRDR-form strategy trains in KTRDR units (a real training): fuzzy-less indicators are
not computed, moving averages are relative to the price."""

from __future__ import annotations

from ktrdr.config import parse_strategy
from tests.support.ktrdr_form import KTRDR_FORM


def test_ktrdr_form_trains_in_ktrdr_units(sample_data_dir):
    from ktrdr.training.executor import TrainingExecutor

    cfg = parse_strategy(KTRDR_FORM.replace("start_date: 2017-04-19", "start_date: 2017-10-01"))
    result = TrainingExecutor(sample_data_dir, device="cpu", importance_repeats=1).run(cfg)
    names = result.bundle.metadata["feature_names"]
    assert not any(n.startswith(("macd", "stoch")) for n in names)  # fuzzy-less: not computed
    assert "sma_20_near" in names
    assert result.bundle.metadata["notices"] == cfg.notices()
    trading = result.metrics["trading"]
    assert set(trading["overall"]) >= {"strategy", "buy_and_hold", "majority", "flat"}
