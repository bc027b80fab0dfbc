"""What every training of one split does, the single split's and each walk-forward fold's
alike: the scaler fitted on the split's training rows, the seeded model and trainer, and the
model's signals. Keeping them here is what makes a fold train exactly as the final model does.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ktrdr.config.strategy import StrategyConfig
from ktrdr.models import MLPClassifier, MLPSpec, embedding_dim_for
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.dataset import Dataset, Scaler
from ktrdr.training.progress import ProgressReporter
from ktrdr.training.split import Split
from ktrdr.training.trainer import Tensors, Trainer, class_weights, predict_logits


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class ScaledRows:
    """The dataset scaled with a scaler fitted on ``split.train`` only, as tensors on demand."""

    def __init__(
        self, cfg: StrategyConfig, dataset: Dataset, split: Split, device: torch.device
    ) -> None:
        self.dataset = dataset
        self.device = device
        self.scaler = Scaler.fit(dataset.x[split.train], cfg.model.features.scale_features)
        self.x = self.scaler.transform(dataset.x)

    def part(self, rows: np.ndarray) -> Tensors:
        ds = self.dataset
        return Tensors.from_numpy(self.x[rows], ds.y[rows], ds.symbol_idx[rows], self.device)


def build_model(
    cfg: StrategyConfig, dataset: Dataset, device: torch.device, seed: int
) -> tuple[MLPClassifier, MLPSpec]:
    """The strategy's model, its initial weights drawn from ``seed``."""
    seed_everything(seed)
    arch = cfg.model.architecture
    spec = MLPSpec(
        n_features=len(dataset.feature_names),
        hidden_layers=tuple(arch.hidden_layers),
        activation=arch.activation,
        dropout=arch.dropout,
        n_symbols=len(dataset.symbols),
        embedding_dim=embedding_dim_for(len(dataset.symbols)),
    )
    return MLPClassifier(spec).to(device), spec


def build_trainer(
    cfg: StrategyConfig,
    model: MLPClassifier,
    y_train: np.ndarray,
    seed: int,
    reporter: ProgressReporter,
    cancel: CancellationToken,
) -> Trainer:
    weights = class_weights(y_train) if cfg.model.training.class_weights == "balanced" else None
    return Trainer(
        model,
        cfg.model.training,
        seed=seed,
        reporter=reporter,
        cancel=cancel,
        loss_weights=weights,
    )


def predicted(model: torch.nn.Module, rows: Tensors) -> np.ndarray:
    """The model's class for each row."""
    with torch.no_grad():
        return np.asarray(predict_logits(model, rows).argmax(dim=1).cpu().numpy())


__all__ = ["ScaledRows", "build_model", "build_trainer", "predicted", "seed_everything"]
