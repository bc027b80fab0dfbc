"""The control: on a seeded random walk no model can have an edge, and the summary must say so.

Nothing in a random walk's past predicts its next move, yet a swing label can be partly read
from the move since the last turning point, so accuracy far above the majority class proves
nothing here. The summary must not present the model as beating its baselines: neither the
logistic nor the persistence baseline lies below the model's 95 % accuracy interval (nor
excludes zero from below in the paired difference), and the verdict is "no edge".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _write_random_walk(directory: Path, bars: int, seed: int) -> None:
    """EURUSD_1h.csv in the bundled samples' format: a driftless log-normal random walk."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 0.002, bars)))
    open_ = np.concatenate([[1.1], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.0005, bars))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    start = np.datetime64("2020-01-01T00:00")
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(bars):
        stamp = str(start + np.timedelta64(i, "h")).replace("T", " ")
        lines.append(
            f"{stamp}:00,{open_[i]:.6f},{high[i]:.6f},{low[i]:.6f},{close[i]:.6f},"
            f"{int(rng.integers(100, 2000))}"
        )
    (directory / "EURUSD_1h.csv").write_text("\n".join(lines) + "\n")


def test_a_random_walk_shows_no_edge(tmp_path: Path, tiny_strategy_yaml: str) -> None:
    from ktrdr.cli.summary import run_summary
    from ktrdr.config import parse_strategy
    from ktrdr.training.executor import TrainingExecutor

    _write_random_walk(tmp_path, 3000, seed=11)
    result = TrainingExecutor(tmp_path, device="cpu", importance_repeats=1).run(
        parse_strategy(tiny_strategy_yaml), strategy_yaml=tiny_strategy_yaml
    )
    metrics = result.metrics
    interval = metrics["uncertainty"]["accuracy"]["model"]
    test = metrics["baselines"]["test"]
    for name in ("logistic", "persistence"):
        # Not below the model's interval (the model does not beat it); above it is allowed:
        # four epochs leave the tiny MLP short of what logistic regression fits exactly.
        assert interval["low"] <= test[name], (name, test, interval)
        assert metrics["uncertainty"]["accuracy"][f"model_minus_{name}"]["low"] <= 0.0
    assert not metrics["verdict"]["edge"]
    summary = run_summary(
        "tiny_rsi", device="cpu", where="here", duration_s=1.0, metadata=result.bundle.metadata
    )
    lines = summary.strip().splitlines()
    assert lines[0].startswith("tiny_rsi: trained on cpu")
    assert lines[1].startswith("  verdict: no edge over "), summary  # the verdict leads
    assert "majority (naive floor)" in summary and "(baseline)" not in summary
    assert result.summary["test_edge"] == 0.0
