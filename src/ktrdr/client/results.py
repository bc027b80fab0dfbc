"""The outcome of a training operation, with its metrics and epoch curves as DataFrames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.client.errors import KtrdrClientError, OperationFailedError, require_module
from ktrdr.client.records import ModelRef, OperationInfo, read_model_metadata

if TYPE_CHECKING:  # pandas loads when a table is asked for, not with the client
    import pandas as pd

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "duration_s",
)


@dataclass
class TrainingResult:
    """A finished (or, after a detached watch, the latest known) training operation.

    ``metrics`` are the run's final metrics (``test_accuracy``, ``test_loss``, ...);
    ``history`` has one row per epoch, read from the model's ``metadata.json`` when the model
    directory is readable from here, else from the epoch events this client saw.
    """

    operation: OperationInfo
    epoch_events: list[dict[str, float]] = field(default_factory=list)
    # Downloads a model through the backend (``TrainingClient.download_model``), when known.
    fetch: Callable[..., Path] | None = field(default=None, repr=False)
    _metadata: dict[str, Any] | None = field(default=None, init=False, repr=False)

    # -- the operation ---------------------------------------------------------------------
    @property
    def operation_id(self) -> str:
        return self.operation.operation_id

    @property
    def status(self) -> str:
        return self.operation.status

    @property
    def ok(self) -> bool:
        return self.operation.status == "completed"

    @property
    def mode(self) -> str:
        return self.operation.mode

    @property
    def mode_reason(self) -> str:
        return self.operation.mode_reason

    @property
    def error_message(self) -> str:
        return self.operation.error

    @property
    def model(self) -> ModelRef | None:
        return self.operation.model

    @property
    def device(self) -> str:
        return str(self.operation.proto.result.device)

    @property
    def duration_s(self) -> float:
        return float(self.operation.proto.result.duration_s)

    def raise_for_status(self) -> TrainingResult:
        """Raise ``OperationFailedError`` unless the operation completed; returns self."""
        if not self.ok:
            raise OperationFailedError(self)
        return self

    # -- metrics ---------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.operation.metrics)

    def metrics_frame(self) -> pd.DataFrame:
        """The final metrics as a one-column table indexed by metric name (pandas; without
        it, ``metrics`` is the same as a dict)."""
        pd = require_module(
            "pandas", "result.metrics_frame()", instead="result.metrics is the same as a dict"
        )

        return pd.DataFrame(
            {"value": pd.Series(self.metrics, dtype=float)}, index=sorted(self.metrics)
        ).rename_axis("metric")

    def download(self, dest: str | Path | None = None) -> Path:
        """The model's bundle directory, downloaded through the backend (cached by SHA-256)."""
        if self.model is None:
            raise KtrdrClientError(f"operation {self.operation_id} has no stored model")
        if self.fetch is None:
            raise KtrdrClientError("this result has no client to download the model with")
        return self.fetch(self.model, dest)

    def metadata(self) -> dict[str, Any] | None:
        """The model's ``metadata.json`` (downloaded through the backend, else read from a
        model store on this machine), or None when there is no readable model."""
        if self.model is None:
            return None
        if self._metadata is None:
            self._metadata = self._read_metadata()
        return self._metadata

    def _read_metadata(self) -> dict[str, Any] | None:
        assert self.model is not None
        if self.fetch is not None:
            try:
                return read_model_metadata(self.download())
            except (KtrdrClientError, ValueError, OSError):
                pass  # e.g. a backend without DownloadModel, a closed client: the local store
        try:
            return self.model.metadata()
        except KtrdrClientError:
            return None

    @cached_property
    def history(self) -> pd.DataFrame:
        """Per-epoch curves: train/val loss and accuracy, learning rate, duration (pandas;
        without it, ``history_rows()`` has the same as a list of dicts)."""
        pd = require_module(
            "pandas", "result.history", instead="result.history_rows() has it as dicts"
        )
        table = pd.DataFrame(self.history_rows())
        if table.empty:
            return pd.DataFrame(columns=list(HISTORY_COLUMNS)).set_index("epoch")
        return table.drop_duplicates("epoch", keep="last").set_index("epoch").sort_index()

    def history_rows(self) -> list[dict[str, Any]]:
        """Per-epoch curves as plain dicts, one per epoch (what ``history`` tabulates)."""
        meta = self.metadata()
        rows: list[dict[str, Any]] = list(meta.get("history", [])) if meta else []
        return rows or list(self.epoch_events)

    def per_class_frame(self) -> pd.DataFrame | None:
        """Test precision/recall/F1/support per class (from the model's metadata)."""
        meta = self.metadata()
        if not meta:
            return None
        return per_class_frame(meta)

    def trading_frame(self) -> pd.DataFrame | None:
        """The test period traded: strategy and baselines (from the model's metadata)."""
        meta = self.metadata()
        if not meta:
            return None
        return trading_frame(meta)

    def folds_frame(self) -> pd.DataFrame | None:
        """The walk-forward folds, one row each (None without folds or metadata)."""
        meta = self.metadata()
        return folds_frame(meta) if meta else None

    def oos_equity_frame(self) -> pd.DataFrame | None:
        """The walk-forward folds' test periods traded in order (None without folds)."""
        meta = self.metadata()
        return oos_equity_frame(meta) if meta else None

    def __repr__(self) -> str:
        where = f", model={self.model.path!r}" if self.model else ""
        acc = self.metrics.get("test_accuracy")
        shown = f", test_accuracy={acc:.4f}" if acc is not None else ""
        return (
            f"TrainingResult({self.operation_id!r}, status={self.status!r}, "
            f"mode={self.mode!r}{shown}{where})"
        )


def per_class_frame(metadata: dict[str, Any]) -> pd.DataFrame:
    """Test metrics per class from a model's metadata."""
    pd = require_module("pandas", "per_class_frame()", instead="the model's metadata has them")

    per_class = metadata.get("metrics", {}).get("test", {}).get("per_class", {})
    return pd.DataFrame.from_dict(per_class, orient="index").rename_axis("class")


TRADING_COLUMNS = ("return", "sharpe", "max_drawdown", "trades", "hit_rate")
TRADING_RULES = ("strategy", "buy_and_hold", "logistic", "persistence", "majority", "flat")


def trading_frame(metadata: dict[str, Any]) -> pd.DataFrame:
    """Overall trading metrics of the test period: one row for the strategy and one per
    baseline (buy_and_hold, logistic, persistence, majority, flat; the majority class is the
    naive floor), with the strategy's 95 % interval (``low``/``high`` of return and Sharpe).
    ``frame.attrs``: ``verdict`` (edge or no edge over the best baseline, with the numbers),
    ``accuracy`` (the model's accuracy against the best accuracy baseline) and
    ``sharpe_caveat`` (set when the test period is too short for an annualised figure)."""
    pd = require_module("pandas", "trading_frame()", instead="the model's metadata has them")

    metrics = metadata.get("metrics", {})
    trading = metrics.get("trading", {})
    overall = {**trading.get("overall", {}), **metrics.get("baselines", {}).get("trading", {})}
    rows = {
        name: {column: overall[name].get(column) for column in TRADING_COLUMNS}
        for name in TRADING_RULES
        if isinstance(overall.get(name), dict)
    }
    intervals = metrics.get("uncertainty", {}).get("trading", {})
    for column, key in (("return", "strategy_return"), ("sharpe", "strategy_sharpe")):
        if key in intervals and "strategy" in rows:
            rows["strategy"][f"{column}_low"] = intervals[key]["low"]
            rows["strategy"][f"{column}_high"] = intervals[key]["high"]
    columns = list(TRADING_COLUMNS)
    if intervals:
        columns += ["return_low", "return_high", "sharpe_low", "sharpe_high"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table = table.rename_axis("rule")
    found = metrics.get("verdict") or trading.get("verdict", {})
    table.attrs["verdict"] = found.get("text", "")
    table.attrs["accuracy"] = found.get("accuracy_text", "")
    short = metrics.get("uncertainty", {}).get("short_period", {})
    table.attrs["sharpe_caveat"] = short.get("text", "")
    return table


FOLD_COLUMNS = (
    "train_start",
    "validation_start",
    "test_start",
    "test_end",
    "train_bars",
    "test_bars",
    "accuracy",
    "majority_accuracy",
    "return",
    "sharpe",
    "max_drawdown",
    "trades",
    "return_buy_and_hold",
    "beats_baselines",
    "best_baseline",
)


def folds_frame(metadata: dict[str, Any]) -> pd.DataFrame | None:
    """One row per walk-forward fold (index ``fold``), or None for a model without folds.
    ``frame.attrs["aggregate"]``: mean, std, min and max of accuracy, return, Sharpe and
    max drawdown over the folds; ``attrs["stitched"]``: the out-of-sample run's numbers."""
    wf = metadata.get("metrics", {}).get("walk_forward")
    if not wf:
        return None
    pd = require_module("pandas", "folds_frame()", instead="the model's metadata has them")
    rows = [
        {
            **{k: row.get(k) for k in FOLD_COLUMNS},
            "train_bars": row["bars"]["train"] + row["bars"]["validation"],
            "test_bars": row["bars"]["test"],
        }
        for row in wf["folds"]
    ]
    table = pd.DataFrame(rows, index=[row["fold"] for row in wf["folds"]], columns=FOLD_COLUMNS)
    table = table.rename_axis("fold")
    table.attrs["aggregate"] = wf.get("aggregate", {})
    stitched = wf.get("stitched", {})
    table.attrs["stitched"] = {
        k: v for k, v in stitched.get("overall", {}).items() if isinstance(v, dict)
    }
    table.attrs["verdict"] = stitched.get("verdict", {}).get("text", "")
    return table


def oos_equity_frame(metadata: dict[str, Any]) -> pd.DataFrame | None:
    """The stitched out-of-sample equity (1.0 at the first fold's test; strategy and
    buy-and-hold columns, indexed by time), or None for a model without folds."""
    wf = metadata.get("metrics", {}).get("walk_forward")
    if not wf:
        return None
    pd = require_module("pandas", "oos_equity_frame()", instead="the model's metadata has it")
    curve = wf["stitched"]["equity_curve"]
    index = pd.to_datetime(curve["times"]).rename("time")
    return pd.DataFrame({k: curve[k] for k in ("strategy", "buy_and_hold")}, index=index)


__all__ = [
    "FOLD_COLUMNS",
    "HISTORY_COLUMNS",
    "TRADING_COLUMNS",
    "TrainingResult",
    "folds_frame",
    "oos_equity_frame",
    "per_class_frame",
    "trading_frame",
]
