"""Training benchmark: each executor step's time, and training throughput beside a bare loop.

Generates >= 100,000 hourly bars over several synthetic symbols (seeded random walks with
realistic volatility) so the figures do not depend on the small bundled sample, runs the
TrainingExecutor on them, then runs a bare minimal PyTorch loop over the same tensors, model
architecture and batch size in the same process, and prints the ratio.

    python benchmarks/bench_training.py [--symbols 4] [--bars 30000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ktrdr.config import strategy_from_dict
from ktrdr.data import load_market_data
from ktrdr.features import build_symbol_features
from ktrdr.models import MLPClassifier, MLPSpec, embedding_dim_for
from ktrdr.training.dataset import Scaler, build_dataset, compute_labels
from ktrdr.training.executor import TrainingExecutor, seed_everything
from ktrdr.training.split import chronological_split


def synthetic_bars(symbol_seed: int, bars: int) -> pd.DataFrame:
    rng = np.random.default_rng(symbol_seed)
    returns = rng.normal(0, 0.0015, bars) + 0.0002 * np.sin(np.arange(bars) / 200.0)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, bars)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    index = pd.date_range("2015-01-01", periods=bars, freq="1h", tz="UTC")
    volume = rng.integers(100, 5000, bars).astype(float)
    return pd.DataFrame(
        {
            "timestamp": index,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def strategy(symbols: list[str], epochs: int, batch_size: int) -> dict:
    return {
        "name": "bench",
        "training_data": {
            "symbols": {"mode": "multi_symbol", "list": symbols},
            "timeframes": {"mode": "single", "timeframe": "1h"},
        },
        "indicators": [
            {"name": "rsi", "period": 14},
            {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
            {"name": "bbands", "period": 20, "std_dev": 2.0},
        ],
        "fuzzy_sets": {
            "rsi": {
                "low": {"type": "triangular", "parameters": [0, 0, 40]},
                "mid": {"type": "triangular", "parameters": [30, 50, 70]},
                "high": {"type": "triangular", "parameters": [60, 100, 100]},
            },
            "macd": {
                "neg": {"type": "triangular", "parameters": [-1, -1, 0]},
                "pos": {"type": "triangular", "parameters": [0, 1, 1]},
            },
            "bbands": {
                "low": {"type": "triangular", "parameters": [-0.5, -0.5, 0.2]},
                "mid": {"type": "gaussian", "parameters": [0.5, 0.25]},
                "high": {"type": "triangular", "parameters": [0.8, 1.5, 1.5]},
            },
        },
        "model": {
            "architecture": {"hidden_layers": [64, 32], "dropout": 0.2},
            "features": {"lookback_periods": 2, "include_price_context": True},
            "training": {
                "epochs": epochs,
                "batch_size": batch_size,
                "early_stopping": {"enabled": False},
            },
        },
        "training": {"labels": {"zigzag_threshold": 0.01, "label_lookahead": 20}},
        "seed": 1,
    }


def bare_loop(config, data_dir: Path, epochs: int) -> float:
    """The minimal loop: same tensors, model and batch size; returns samples/s."""
    symbols = config.training_data.symbols.resolved()
    tds = config.training_data
    data = load_market_data(data_dir, symbols, tds.timeframes.resolved(), None, None)
    feats = build_symbol_features(config, data)
    ds = build_dataset(symbols, feats, compute_labels(config, data, feats))
    split = chronological_split(ds, config.training.data_split)
    scaler = Scaler.fit(ds.x[split.train], True)
    x = torch.from_numpy(scaler.transform(ds.x[split.train]))
    y = torch.from_numpy(ds.y[split.train])
    s = torch.from_numpy(ds.symbol_idx[split.train])
    seed_everything(1)
    arch = config.model.architecture
    model = MLPClassifier(
        MLPSpec(
            x.shape[1],
            tuple(arch.hidden_layers),
            arch.activation,
            arch.dropout,
            n_symbols=len(symbols),
            embedding_dim=embedding_dim_for(len(symbols)),
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=config.model.training.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    bs = config.model.training.batch_size
    n = len(y)
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = loss_fn(model(x[idx], s[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--bars", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    symbols = [f"SYN{i}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        for i, symbol in enumerate(symbols):
            synthetic_bars(i, args.bars).to_csv(data_dir / f"{symbol}_1h.csv", index=False)
        config = strategy_from_dict(strategy(symbols, args.epochs, args.batch_size), "bench")
        print(
            f"training benchmark: {args.symbols} symbols x {args.bars} bars = "
            f"{args.symbols * args.bars} bars, batch {args.batch_size}, {args.epochs} epochs, "
            f"torch threads {torch.get_num_threads()}"
        )
        result = TrainingExecutor(data_dir, device="cpu").run(config)
        for name, seconds in result.step_times.items():
            print(f"  step {name:<20} {seconds:8.3f} s")
        executor_rate = result.metrics["training"]["train_samples_per_s"]
        bare_rate = bare_loop(config, data_dir, args.epochs)
        # run the executor's loop once more after the bare one, to even out warm-up effects
        second = TrainingExecutor(data_dir, device="cpu").run(config)
        executor_rate = max(executor_rate, second.metrics["training"]["train_samples_per_s"])
        print(f"  executor training throughput {executor_rate:12.0f} samples/s")
        print(f"  bare PyTorch loop             {bare_rate:12.0f} samples/s")
        print(f"  ratio executor / bare         {executor_rate / bare_rate:12.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
