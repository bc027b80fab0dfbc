"""Step 8: the training loop, readable top to bottom.

Per epoch: shuffle the training rows (only them), then per batch: forward, loss, backward,
clip, step, report; then validate, schedule, keep the best weights, stop early? Batches are
indexed straight out of tensors that already live on the device (no DataLoader), which keeps
the loop within a few percent of a bare PyTorch loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ktrdr.config.strategy import ModelTrainingConfig
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import TRAIN_STEP, ProgressEvent, ProgressKind, ProgressReporter

logger = logging.getLogger(__name__)

CHECK_EVERY_BATCHES = 16  # cancellation and batch-progress checks (issue asks for <= 50)
EVAL_BATCH = 8192


@dataclass(frozen=True)
class Tensors:
    """One split's rows on the training device."""

    x: torch.Tensor
    y: torch.Tensor
    symbol_idx: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def from_numpy(
        cls, x: np.ndarray, y: np.ndarray, symbol_idx: np.ndarray, device: torch.device
    ) -> Tensors:
        return cls(
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device),
            torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(device),
            torch.from_numpy(np.ascontiguousarray(symbol_idx, dtype=np.int64)).to(device),
        )


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's numbers. The train loss and accuracy are those of the training batches as
    they were trained (dropout on, weights moving), as Keras and Lightning report them."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    duration_s: float

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class TrainOutcome:
    history: list[EpochRecord]
    best_epoch: int
    stopped_early: bool
    train_samples_per_s: float


def class_weights(y: np.ndarray, n_classes: int = 3) -> torch.Tensor:
    """Balanced weights n / (k * count); a class absent from training gets weight 1."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.no_grad()
def predict_logits(model: nn.Module, data: Tensors, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits for every row, in eval mode, batched; returns a tensor on the data's device."""
    was_training = model.training
    model.eval()
    outs = [
        model(data.x[i : i + batch_size], data.symbol_idx[i : i + batch_size])
        for i in range(0, len(data), batch_size)
    ]
    model.train(was_training)
    if not outs:
        return torch.empty((0, 3), device=data.x.device)
    return torch.cat(outs)


def loss_and_accuracy(model: nn.Module, data: Tensors, loss_fn: nn.Module) -> tuple[float, float]:
    logits = predict_logits(model, data)
    loss = float(loss_fn(logits, data.y).item())
    accuracy = float((logits.argmax(dim=1) == data.y).float().mean().item())
    return loss, accuracy


def _epoch_train_metrics(
    batch_losses: list[torch.Tensor],
    batch_logits: list[torch.Tensor],
    targets: torch.Tensor,
    batch_size: int,
) -> tuple[float, float]:
    """Mean loss over the epoch's samples (each batch's mean loss weighted by its size) and
    the accuracy of the predictions made while training, ``targets`` in training order."""
    n = len(targets)
    if n == 0 or not batch_losses:
        return 0.0, 0.0
    losses = torch.stack(batch_losses)
    sizes = torch.full_like(losses, float(batch_size))
    sizes[-1] = n - batch_size * (len(batch_losses) - 1)
    loss = float((losses * sizes).sum().item()) / n
    predicted = torch.cat(batch_logits).argmax(dim=1)
    accuracy = float((predicted == targets).sum().item()) / n
    return loss, accuracy


def build_optimizer(model: nn.Module, cfg: ModelTrainingConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ModelTrainingConfig
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    sched = cfg.lr_scheduler
    if sched is None or sched.type == "none":
        return None
    if sched.type == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, sched.step_size, gamma=sched.gamma)
    if sched.type == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.epochs))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=sched.gamma, patience=sched.patience
    )


class Trainer:
    """Fits a model on one split and keeps the best weights seen on the validation split."""

    def __init__(
        self,
        model: nn.Module,
        cfg: ModelTrainingConfig,
        *,
        seed: int,
        reporter: ProgressReporter,
        cancel: CancellationToken,
        loss_weights: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.reporter = reporter
        self.cancel = cancel
        self.generator = torch.Generator().manual_seed(seed)
        device = next(model.parameters()).device
        self.loss_fn = nn.CrossEntropyLoss(
            weight=loss_weights.to(device) if loss_weights is not None else None
        )

    def fit(self, train: Tensors, val: Tensors | None) -> TrainOutcome:
        cfg, model = self.cfg, self.model
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(optimizer, cfg)
        stopping = cfg.early_stopping
        n, bs = len(train), cfg.batch_size
        n_batches = (n + bs - 1) // bs
        scale = self.reporter.scale  # the run's: a walk-forward run gives the folds their share
        base, span = scale.base(TRAIN_STEP), scale.span(TRAIN_STEP)
        best_loss, best_epoch, bad_epochs = float("inf"), 0, 0
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history: list[EpochRecord] = []
        stopped_early, train_time, samples = False, 0.0, 0
        batch_interval = self.reporter.min_batch_interval
        last_batch_report = float("-inf")

        for epoch in range(1, cfg.epochs + 1):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=self.generator).to(train.x.device)
            # train metrics from the batches as trained: each batch's loss and logits are kept
            # (detached references, no tensor op) and reduced once at the epoch's end
            batch_losses: list[torch.Tensor] = []
            batch_logits: list[torch.Tensor] = []
            for b in range(n_batches):
                # batch -> forward -> loss -> backward -> (clip) -> step
                idx = order[b * bs : (b + 1) * bs]
                logits = model(train.x[idx], train.symbol_idx[idx])
                loss = self.loss_fn(logits, train.y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.gradient_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
                optimizer.step()
                batch_losses.append(loss.detach())
                batch_logits.append(logits.detach())
                # log / cancel? (cheap checks, every few batches)
                if b % CHECK_EVERY_BATCHES == 0:
                    self.cancel.raise_if_cancelled()
                    now = time.monotonic()
                    if now - last_batch_report >= batch_interval:
                        last_batch_report = now
                        self._report_batch(epoch, b + 1, n_batches, float(loss.item()), base, span)
            epoch_time = time.perf_counter() - started
            train_time += epoch_time
            samples += n

            # validate
            # train metrics come from the batches as they were trained (no second pass over
            # the training set, which cost a bare loop's 25 %); validation is a real pass
            train_loss, train_acc = _epoch_train_metrics(
                batch_losses, batch_logits, train.y[order], bs
            )
            val_loss, val_acc = (
                loss_and_accuracy(model, val, self.loss_fn)
                if val is not None and len(val)
                else (None, None)
            )
            monitored = val_loss if val_loss is not None else train_loss
            lr = float(optimizer.param_groups[0]["lr"])
            record = EpochRecord(
                epoch, train_loss, train_acc, val_loss, val_acc, lr, time.perf_counter() - started
            )
            history.append(record)
            self._report_epoch(record, base, span)

            # schedule
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(monitored)
            elif scheduler is not None:
                scheduler.step()

            # keep the best weights (a real copy, not a view of the live parameters)
            if monitored < best_loss - stopping.min_delta:
                best_loss, best_epoch, bad_epochs = monitored, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1

            # stop?
            self.cancel.raise_if_cancelled()
            if stopping.enabled and bad_epochs >= stopping.patience:
                stopped_early = True
                logger.info("early stopping after epoch %d (best epoch %d)", epoch, best_epoch)
                break

        model.load_state_dict(best_state)
        return TrainOutcome(history, best_epoch, stopped_early, samples / max(train_time, 1e-9))

    def _report_batch(
        self, epoch: int, batch: int, n_batches: int, loss: float, base: float, span: float
    ) -> None:
        total = self.cfg.epochs
        done = ((epoch - 1) + batch / n_batches) / total
        self.reporter.emit(
            ProgressEvent(
                ProgressKind.BATCH,
                step=TRAIN_STEP,
                step_name="train",
                epoch=epoch,
                total_epochs=total,
                batch=batch,
                total_batches=n_batches,
                percent=base + span * done,
                metrics={"batch_loss": loss},
            )
        )

    def _report_epoch(self, record: EpochRecord, base: float, span: float) -> None:
        metrics = {
            "train_loss": record.train_loss,
            "train_accuracy": record.train_accuracy,
            "learning_rate": record.learning_rate,
        }
        if record.val_loss is not None and record.val_accuracy is not None:
            metrics |= {"val_loss": record.val_loss, "val_accuracy": record.val_accuracy}
        self.reporter.emit(
            ProgressEvent(
                ProgressKind.EPOCH,
                step=TRAIN_STEP,
                step_name="train",
                epoch=record.epoch,
                total_epochs=self.cfg.epochs,
                percent=base + span * record.epoch / self.cfg.epochs,
                metrics=metrics,
                message=f"epoch {record.epoch}/{self.cfg.epochs}",
            )
        )
