"""Step 9's trading part: the model's signals over a period (the whole test period; the
validation period for sweeps), traded."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ktrdr.config.strategy import StrategyConfig
from ktrdr.labels import CLASS_NAMES
from ktrdr.training.dataset import Dataset
from ktrdr.training.split import Split
from ktrdr.training.trading import trading_metrics
from ktrdr.training.trainer import Tensors, predict_logits


def trade_test_period(
    model: nn.Module, rows: Tensors, dataset: Dataset, split: Split, cfg: StrategyConfig
) -> dict[str, Any]:
    """Trading metrics of every bar in the test period (confirmed labels or not)."""
    return trade_period(model, rows, dataset, split, cfg, split.test_period)


def trade_period(
    model: nn.Module,
    rows: Tensors,
    dataset: Dataset,
    split: Split,
    cfg: StrategyConfig,
    period: np.ndarray,
) -> dict[str, Any]:
    """Trading metrics of the bars ``period`` (row indices; ``rows`` their tensors)."""
    with torch.no_grad():
        predicted = predict_logits(model, rows).argmax(dim=1).cpu().numpy()
    return trade_signals(predicted, dataset, split, cfg, period)


def trade_signals(
    predicted: np.ndarray,
    dataset: Dataset,
    split: Split,
    cfg: StrategyConfig,
    period: np.ndarray | None = None,
) -> dict[str, Any]:
    """Trading metrics of any signal rule over ``period``'s rows (default: the test period),
    in their order."""
    period = split.test_period if period is None else period
    majority = int(np.bincount(dataset.y[split.train], minlength=len(CLASS_NAMES)).argmax())
    return trading_metrics(
        dataset.symbols,
        dataset.symbol_idx[period],
        dataset.timestamps[period],
        dataset.next_return[period],
        predicted,
        majority,
        cost_bps=cfg.evaluation.cost_bps,
        allow_short=cfg.evaluation.allow_short,
        sizing=cfg.evaluation.position_sizing,
    )


__all__ = ["trade_period", "trade_signals", "trade_test_period"]
