"""Each defect of the original KTRDR implementation, shown impossible here."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from ktrdr.config.strategy import DataSplitConfig, EarlyStoppingConfig, ModelTrainingConfig
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressReporter

MULTI_TF = {
    "training_data": {
        "timeframes": {
            "mode": "multi_timeframe",
            "list": ["1h", "4h", "1d"],
            "base_timeframe": "1h",
        },
    }
}


def _features(config, data_dir, end=None):
    from ktrdr.data import load_market_data
    from ktrdr.features import build_symbol_features

    td = config.training_data
    data = load_market_data(
        data_dir, td.symbols.resolved(), td.timeframes.resolved(), td.start_date, end or td.end_date
    )
    return data, build_symbol_features(config, data)


def test_indicator_parameters_are_honoured(make_strategy, sample_data_dir):
    rsi = {"name": "rsi", "period": 7}
    macd = {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9}
    _, f7 = _features(make_strategy(indicators=[rsi, macd]), sample_data_dir)
    _, f14 = _features(make_strategy(indicators=[dict(rsi, period=14), macd]), sample_data_dir)
    a, b = f7["EURUSD"].frame, f14["EURUSD"].frame
    common = a.index.intersection(b.index)
    assert not np.allclose(a.loc[common, "rsi_oversold"], b.loc[common, "rsi_oversold"])


def test_warmup_rows_are_dropped_not_zero_filled(make_strategy, sample_data_dir):
    data, feats = _features(make_strategy(), sample_data_dir)
    frame = feats["EURUSD"].frame
    assert not frame.isna().any().any()
    base = data["EURUSD"]["1h"]
    # MACD(12, 26, 9) needs 33 bars, plus one lag row
    assert frame.index[0] == base.index[34]
    assert feats["EURUSD"].dropped_warmup_rows == 34


def test_list_forms_load_and_train(make_strategy, run_training):
    config = make_strategy(
        training_data={
            "symbols": {"mode": "multi_symbol", "list": ["EURUSD", "GOOG"]},
            "timeframes": {"mode": "single", "timeframe": "1d"},
        },
        model={"training": {"epochs": 2, "batch_size": 32}},
    )
    result = run_training(config)
    assert result.bundle.metadata["symbols"] == ["EURUSD", "GOOG"]
    assert set(result.metrics["test"]["per_symbol"]) == {"EURUSD", "GOOG"}
    assert "model.symbol_embedding.weight" in result.bundle.weights


def test_multi_timeframe_trains_with_prefixed_features(make_strategy, run_training):
    result = run_training(make_strategy(**MULTI_TF, model={"training": {"epochs": 1}}))
    names = result.bundle.metadata["feature_names"]
    assert {n.split("_", 1)[0] for n in names} == {"1h", "4h", "1d"}
    assert result.bundle.metadata["timeframes"] == ["1h", "4h", "1d"]


def test_no_lookahead_across_timeframes(make_strategy, sample_data_dir):
    """Features up to a day are the same whether or not later bars exist."""
    import pandas as pd

    config = make_strategy(**MULTI_TF)
    _, full = _features(config, sample_data_dir)
    _, cut = _features(config, sample_data_dir, end=date(2017, 9, 13))
    a, b = full["EURUSD"].frame, cut["EURUSD"].frame
    assert len(b) < len(a)
    pd.testing.assert_frame_equal(a.loc[b.index], b)


def test_split_is_one_calendar_for_every_symbol(make_strategy, sample_data_dir):
    from ktrdr.training.dataset import build_dataset, compute_labels
    from ktrdr.training.split import chronological_split

    config = make_strategy(
        training_data={
            "symbols": {"mode": "multi_symbol", "list": ["EURUSD", "GOOG"]},
            "timeframes": {"mode": "single", "timeframe": "1d"},
        },
    )
    data, feats = _features(config, sample_data_dir)
    dataset = build_dataset(["EURUSD", "GOOG"], feats, compute_labels(config, data, feats))
    split = chronological_split(dataset, DataSplitConfig(train=0.6, validation=0.1, test=0.3))
    ts = dataset.timestamps
    val_start = np.datetime64(split.info["boundaries"]["validation_start"][:19], "ns")
    test_start = np.datetime64(split.info["boundaries"]["test_start"][:19], "ns")
    assert ts[split.train].max() < val_start <= ts[split.validation].min()
    assert ts[split.validation].max() < test_start <= ts[split.test].min()
    # The two histories do not overlap (GOOG 2004-2013, EURUSD 2017-2018): no test row of
    # either symbol predates a training row of the other.
    assert ts[split.test].min() > ts[split.train].max()
    union = np.unique(ts)
    assert (union < test_start).sum() == pytest.approx(0.7 * len(union), abs=2)


def test_data_split_test_ratio_has_an_effect(make_strategy, run_training):
    epochs = {"model": {"training": {"epochs": 1}}}
    small = run_training(
        make_strategy(
            training={"data_split": {"train": 0.8, "validation": 0.1, "test": 0.1}}, **epochs
        )
    )
    large = run_training(
        make_strategy(
            training={"data_split": {"train": 0.5, "validation": 0.1, "test": 0.4}}, **epochs
        )
    )
    assert large.metrics["test"]["rows"] > 3 * small.metrics["test"]["rows"]


def test_scale_features_has_an_effect(make_strategy, run_training):
    import torch

    on = run_training(make_strategy(model={"training": {"epochs": 1}}))
    off = run_training(
        make_strategy(model={"training": {"epochs": 1}, "features": {"scale_features": False}})
    )
    assert on.bundle.metadata["scaler"]["type"] == "standard"
    assert off.bundle.metadata["scaler"]["type"] == "none"
    assert not torch.equal(on.bundle.weights["scaler.mean"], off.bundle.weights["scaler.mean"])
    assert torch.all(off.bundle.weights["scaler.scale"] == 1)


def test_price_context_has_an_effect(make_strategy, run_training):
    with_ctx = run_training(
        make_strategy(
            model={"training": {"epochs": 1}, "features": {"include_price_context": True}}
        )
    )
    names = with_ctx.bundle.metadata["feature_names"]
    assert any(n.startswith("price_") for n in names)


def _toy_problem(seed: int = 0):
    import torch

    from ktrdr.training.trainer import Tensors

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=gen)
    y = (x[:, 0] > 0).long()
    xv = torch.randn(64, 8, generator=gen)
    yv = torch.randint(0, 3, (64,), generator=gen)  # noise: validation gets worse with training
    zeros = lambda n: torch.zeros(n, dtype=torch.long)  # noqa: E731
    return Tensors(x, y, zeros(256)), Tensors(xv, yv, zeros(64))


def test_early_stopping_restores_the_best_epoch_not_the_last():
    import torch
    from torch import nn

    from ktrdr.training.trainer import Trainer, loss_and_accuracy

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    cfg = ModelTrainingConfig(
        learning_rate=0.05,
        batch_size=16,
        epochs=30,
        early_stopping=EarlyStoppingConfig(patience=3, min_delta=0.0),
    )

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x, symbol_idx=None):
            return self.inner(x)

    wrapped = Wrapped()
    train, val = _toy_problem()
    trainer = Trainer(
        wrapped, cfg, seed=0, reporter=ProgressReporter(None), cancel=CancellationToken()
    )
    outcome = trainer.fit(train, val)
    losses = [h.val_loss for h in outcome.history]
    assert outcome.stopped_early and outcome.best_epoch < len(outcome.history)
    assert outcome.best_epoch == int(np.argmin(losses)) + 1
    restored_loss, _ = loss_and_accuracy(wrapped, val, trainer.loss_fn)
    assert restored_loss == pytest.approx(min(losses), abs=1e-6)
    assert restored_loss < losses[-1]


def test_multi_symbol_evaluation_uses_each_rows_own_symbol():
    import torch
    from torch import nn

    from ktrdr.training.evaluation import evaluate
    from ktrdr.training.trainer import Tensors

    class _SymbolEcho(nn.Module):
        """Predicts the class equal to the row's symbol index: right only with the right symbol."""

        def forward(self, x, symbol_idx):
            return nn.functional.one_hot(symbol_idx, 3).float() * 10.0

    sym = torch.tensor([0, 0, 1, 1, 2, 2])
    data = Tensors(torch.zeros(6, 4), sym.clone(), sym)
    metrics = evaluate(_SymbolEcho(), data, nn.CrossEntropyLoss(), ["A", "B", "C"])
    assert metrics["accuracy"] == 1.0
    assert {s: m["accuracy"] for s, m in metrics["per_symbol"].items()} == {
        "A": 1.0,
        "B": 1.0,
        "C": 1.0,
    }
