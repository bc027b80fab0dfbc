"""The executor end to end on the bundled data, and the original KTRDR's defects."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from ktrdr.errors import DataError, DeviceError, TrainingCancelled
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import STEP_NAMES, ProgressEvent, ProgressKind


def test_run_produces_complete_bundle(tiny_result):
    meta = tiny_result.bundle.metadata
    assert meta["strategy_name"] == "tiny_rsi"
    assert meta["symbols"] == ["EURUSD"] and meta["timeframes"] == ["1h"]
    assert meta["device"]["type"] == "cpu"
    assert meta["seed"] == 7
    assert set(meta["versions"]) >= {"ktrdr", "torch", "numpy", "talib"}
    assert meta["strategy_yaml"].startswith("name: tiny_rsi")
    assert len(meta["history"]) == 4
    test = tiny_result.metrics["test"]
    assert 0.0 <= test["accuracy"] <= 1.0
    assert np.array(test["confusion_matrix"]).sum() == test["rows"]
    assert set(test["per_class"]) == {"BUY", "HOLD", "SELL"}
    assert {"macro", "weighted", "per_symbol", "loss"} <= set(test)
    # the validation period is traded too, and summarised for sweeps (val_*, not test_*)
    validation = tiny_result.metrics["validation_trading"]["overall"]
    assert validation["bars"] > 0 and {"bar_sharpe", "skewness"} <= set(validation["strategy"])
    summary = tiny_result.summary
    assert summary["val_bars"] == validation["bars"]
    assert summary["val_return_strategy"] == validation["strategy"]["return"]
    importance = tiny_result.metrics["feature_importance"]
    assert [r["rank"] for r in importance] == list(range(1, len(meta["feature_names"]) + 1))
    assert {r["feature"] for r in importance} == set(meta["feature_names"])


def test_every_declared_indicator_reaches_the_features(tiny_result):
    names = tiny_result.bundle.metadata["feature_names"]
    assert any(n.startswith("rsi_") for n in names)
    assert any(n.startswith("macd_") for n in names)
    # lookback_periods: 1 -> every membership has a lag-1 twin
    base = [n for n in names if "_lag" not in n]
    assert sorted(f"{n}_lag1" for n in base) == sorted(n for n in names if n.endswith("_lag1"))


def test_steps_are_logged_and_reported_in_order(make_strategy, run_training, caplog):
    events: list[ProgressEvent] = []
    with caplog.at_level(logging.INFO, logger="ktrdr.training.executor"):
        run_training(make_strategy(model={"training": {"epochs": 2}}), progress=events.append)
    started = [e.step for e in events if e.kind is ProgressKind.STEP_STARTED]
    finished = [e.step for e in events if e.kind is ProgressKind.STEP_FINISHED]
    assert started == finished == list(range(1, len(STEP_NAMES) + 1))
    for number, name in enumerate(STEP_NAMES, start=1):
        assert f"Step {number}: {name}" in caplog.text
    epochs = [e for e in events if e.kind is ProgressKind.EPOCH]
    assert [e.epoch for e in epochs] == [1, 2]
    assert all("val_loss" in e.metrics for e in epochs)
    percents = [e.percent for e in events if e.kind is not ProgressKind.BATCH]
    assert percents == sorted(percents) and percents[-1] == pytest.approx(100.0)


def test_a_failing_callback_cannot_crash_training(make_strategy, run_training):
    def explode(event: ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    result = run_training(make_strategy(model={"training": {"epochs": 1}}), progress=explode)
    assert result.summary["test_accuracy"] >= 0.0


def test_seeded_runs_are_bit_identical(make_strategy, run_training):
    import torch

    config = make_strategy(model={"training": {"epochs": 3}})
    a, b = run_training(config), run_training(config)
    for key, tensor in a.bundle.weights.items():
        assert torch.equal(tensor, b.bundle.weights[key]), key
    assert a.metrics["test"] == b.metrics["test"]
    assert a.metrics["feature_importance"] == b.metrics["feature_importance"]


def test_different_seeds_give_different_weights(make_strategy, run_training):
    import torch

    a = run_training(make_strategy(seed=1, model={"training": {"epochs": 1}}))
    b = run_training(make_strategy(seed=2, model={"training": {"epochs": 1}}))
    assert any(not torch.equal(v, b.bundle.weights[k]) for k, v in a.bundle.weights.items())


def test_cancel_before_start_raises_and_produces_nothing(make_strategy, run_training):
    token = CancellationToken()
    token.cancel("user asked")
    with pytest.raises(TrainingCancelled, match="user asked"):
        run_training(make_strategy(), cancel=token)


def test_cancel_during_training_stops_within_batches(make_strategy, run_training):
    token = CancellationToken()
    seen: list[ProgressEvent] = []

    def on_event(event: ProgressEvent) -> None:
        seen.append(event)
        if event.kind is ProgressKind.BATCH:
            token.cancel("stop now")

    config = make_strategy(model={"training": {"epochs": 50, "batch_size": 16}})
    with pytest.raises(TrainingCancelled):
        run_training(config, progress=on_event, cancel=token)
    assert not any(e.kind is ProgressKind.EPOCH and e.epoch > 1 for e in seen)


def test_cancel_from_another_thread(make_strategy, run_training):
    token = CancellationToken()
    timer = threading.Timer(0.3, token.cancel)
    timer.start()
    try:
        with pytest.raises(TrainingCancelled):
            run_training(make_strategy(model={"training": {"epochs": 500}}), cancel=token)
    finally:
        timer.cancel()


def test_unavailable_device_is_a_clear_error(make_strategy, sample_data_dir):
    import torch

    from ktrdr.training.executor import TrainingExecutor

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="cuda"):
        TrainingExecutor(sample_data_dir, device="cuda").run(make_strategy())


def test_too_few_bars_for_warmup(make_strategy, run_training):
    config = make_strategy(
        training_data={"start_date": "2017-04-19", "end_date": "2017-04-20"},
        indicators=[
            {"name": "rsi", "period": 14},
            {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
        ],
    )
    with pytest.raises(DataError, match="EURUSD"):
        run_training(config)
