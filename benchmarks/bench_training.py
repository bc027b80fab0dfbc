"""Training benchmark: each executor step's time, and training throughput beside a bare loop.

Generates >= 100,000 hourly bars over several synthetic symbols (seeded random walks with
realistic volatility) so the figures do not depend on the small bundled sample, runs the
TrainingExecutor on them (step times), then alternates the library's ``Trainer.fit`` with a
bare PyTorch loop doing the same work (same tensors, model, optimizer with weight decay,
class-weighted loss, gradient clipping, one validation pass per epoch), each timed the same
way, at several batch sizes, and reports the throughput ratio (median and spread).

    python benchmarks/bench_training.py [--symbols 4] [--bars 30000] [--epochs 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ratios import report

from ktrdr.config import strategy_from_dict
from ktrdr.data import load_market_data
from ktrdr.features import build_symbol_features
from ktrdr.models import MLPClassifier, MLPSpec, embedding_dim_for
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.dataset import Scaler, build_dataset, compute_labels
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.fitting import seed_everything
from ktrdr.training.progress import ProgressReporter
from ktrdr.training.split import chronological_split
from ktrdr.training.trainer import Tensors, Trainer, build_optimizer, class_weights


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
                "weight_decay": 1e-4,
                "gradient_clip": 1.0,
                "class_weights": "balanced",
            },
        },
        "training": {"labels": {"zigzag_threshold": 0.01, "label_lookahead": 20}},
        "seed": 1,
    }


def prepared_tensors(config, data_dir: Path) -> tuple[Tensors, Tensors, int]:
    """The executor's own pipeline up to the tensors: train and validation splits, scaled."""
    symbols = config.training_data.symbols.resolved()
    tds = config.training_data
    data = load_market_data(data_dir, symbols, tds.timeframes.resolved(), None, None)
    feats = build_symbol_features(config, data)
    ds = build_dataset(symbols, feats, compute_labels(config, data, feats))
    split = chronological_split(ds, config.training.data_split)
    scaler = Scaler.fit(ds.x[split.train], True)
    cpu = torch.device("cpu")

    def tensors(rows) -> Tensors:
        return Tensors.from_numpy(
            scaler.transform(ds.x[rows]), ds.y[rows], ds.symbol_idx[rows], cpu
        )

    return tensors(split.train), tensors(split.validation), len(symbols)


def new_model(config, n_features: int, n_symbols: int) -> MLPClassifier:
    seed_everything(1)
    arch = config.model.architecture
    spec = MLPSpec(
        n_features,
        tuple(arch.hidden_layers),
        arch.activation,
        arch.dropout,
        n_symbols=n_symbols,
        embedding_dim=embedding_dim_for(n_symbols),
    )
    return MLPClassifier(spec)


def library_fit(config, train: Tensors, val: Tensors, n_symbols: int) -> float:
    """Seconds of the library's ``Trainer.fit`` (the executor's step 8)."""
    cfg = config.model.training
    model = new_model(config, train.x.shape[1], n_symbols)
    trainer = Trainer(
        model,
        cfg,
        seed=1,
        reporter=ProgressReporter(None),
        cancel=CancellationToken(),
        loss_weights=class_weights(train.y.numpy()),
    )
    started = time.perf_counter()
    trainer.fit(train, val)
    return time.perf_counter() - started


def bare_fit(config, train: Tensors, val: Tensors, n_symbols: int) -> float:
    """Seconds of a bare loop doing the same work: the same optimizer with weight decay,
    class-weighted loss, gradient clipping and one validation pass per epoch."""
    cfg = config.model.training
    model = new_model(config, train.x.shape[1], n_symbols)
    optimizer = build_optimizer(model, cfg)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train.y.numpy()))
    generator = torch.Generator().manual_seed(1)
    n, bs = len(train), cfg.batch_size
    started = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = loss_fn(model(train.x[idx], train.symbol_idx[idx]), train.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(val.x, val.symbol_idx), val.y).item()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--bars", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", default="32,256,1024")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for both loops (a worker's budget)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer bars and rounds")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.bars, args.rounds = 10_000, 3
    torch.set_num_threads(args.threads)
    symbols = [f"SYN{i}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        for i, symbol in enumerate(symbols):
            synthetic_bars(i, args.bars).to_csv(data_dir / f"{symbol}_1h.csv", index=False)
        config = strategy_from_dict(strategy(symbols, args.epochs, 256), "bench")
        print(
            f"training benchmark: {args.symbols} symbols x {args.bars} bars = "
            f"{args.symbols * args.bars} bars, {args.epochs} epochs, "
            f"torch threads {torch.get_num_threads()}"
        )
        result = TrainingExecutor(data_dir, device="cpu").run(config)
        for name, seconds in result.step_times.items():
            print(f"  step {name:<20} {seconds:8.3f} s")
        train, val, n_symbols = prepared_tensors(config, data_dir)
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            sized = strategy(symbols, args.epochs, batch_size)
            config = strategy_from_dict(sized, "bench")
            ratios = []
            for _ in range(args.rounds):  # alternated: bare, library, bare, library...
                bare = bare_fit(config, train, val, n_symbols)
                ours = library_fit(config, train, val, n_symbols)
                ratios.append(bare / ours)  # throughput ratio: library / bare
            report(
                f"training step throughput, batch {batch_size}",
                "bare loop, same work",
                ratios,
                ">= 0.95",
            )


if __name__ == "__main__":
    main()
