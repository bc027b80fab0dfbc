"""Using a stored model: BUY/HOLD/SELL signals for new bars, and re-checking its test metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ktrdr.config import strategy_from_dict
from ktrdr.config.strategy import StrategyConfig
from ktrdr.data import load_market_data, resample_ohlcv
from ktrdr.errors import BundleError, DataError
from ktrdr.features import build_symbol_features
from ktrdr.labels import CLASS_NAMES
from ktrdr.models import MLPClassifier, MLPSpec
from ktrdr.storage.bundle import SCALER_MEAN, SCALER_SCALE, ModelBundle
from ktrdr.training.dataset import Scaler, build_dataset, compute_labels
from ktrdr.training.device import resolve_device
from ktrdr.training.evaluation import evaluate, majority_accuracy
from ktrdr.training.sample_periods import sample_periods_line
from ktrdr.training.split import chronological_split
from ktrdr.training.trainer import Tensors, class_weights, predict_logits


class Predictor:
    """A loaded bundle ready to turn OHLCV bars into signals with probabilities."""

    def __init__(self, bundle: ModelBundle, device: str = "cpu") -> None:
        bundle.validate()
        self.bundle = bundle
        meta = bundle.metadata
        self.config: StrategyConfig = strategy_from_dict(meta["strategy"], source="bundle")
        self.feature_names: list[str] = list(meta["feature_names"])
        self.symbols: list[str] = list(meta["symbols"])
        self.timeframes: list[str] = list(meta["timeframes"])
        self.device = resolve_device(device).device
        self.spec = MLPSpec.from_dict(meta["model"])
        self.model = MLPClassifier(self.spec)
        try:
            self.model.load_state_dict(bundle.model_state())
        except RuntimeError as exc:
            raise BundleError(f"weights do not match the stored architecture: {exc}") from exc
        self.model.to(self.device).eval()
        self.scaler = Scaler(
            bundle.weights[SCALER_MEAN].numpy(),
            bundle.weights[SCALER_SCALE].numpy(),
            meta["scaler"]["type"] == "standard",
        )

    @classmethod
    def load(cls, model: Path | str, device: str = "cpu", *, client: Any = None) -> Predictor:
        """A model directory, or a reference to a model the backend stores (``strategy``,
        ``strategy:VERSION``, ``strategy@ALIAS``), downloaded and cached by SHA-256 with
        ``client`` (a ``TrainingClient``; by default one for ``$KTRDR_BACKEND_ADDRESS``)."""
        path = Path(model)
        if not path.is_dir() and isinstance(model, str):
            from ktrdr.client.models import is_model_ref

            if is_model_ref(model):
                if client is None:
                    from ktrdr.client import TrainingClient

                    with TrainingClient() as own:
                        path = own.download_model(model)
                else:
                    path = client.download_model(model)
        return cls(ModelBundle.read(path), device)

    def _symbol_index(self, symbol: str) -> int:
        symbol = symbol.upper()
        if symbol in self.symbols:
            return self.symbols.index(symbol)
        if len(self.symbols) == 1:
            return 0  # a single-symbol model has no symbol input: any instrument can be scored
        raise DataError(
            f"this model was trained on {', '.join(self.symbols)}; no symbol {symbol!r}"
        )

    def check_data(
        self, symbol: str, bars: pd.DataFrame, *, allow_mismatch: bool = False
    ) -> list[str]:
        """Problems with scoring ``bars`` of ``symbol``: a ``DataError`` unless
        ``allow_mismatch`` (then returned as warnings), plus how many bars overlap training.

        Checked: the symbol is one the model was trained on; the bars' spacing is the base
        timeframe's; prices are positive and finite. The last line counts the bars per part of
        the training data (:mod:`ktrdr.training.sample_periods`): only the train part is
        in-sample, the test period is out-of-sample.
        """
        from ktrdr.data.timeframes import timeframe_to_timedelta

        prices = bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(prices) & (prices > 0)).all(axis=1)
        if bad.any():
            raise DataError(
                f"{symbol}: bar {bars.index[int(np.argmax(bad))]} has a non-positive or "
                "non-finite price"
            )
        problems: list[str] = []
        if symbol.upper() not in self.symbols:
            problems.append(
                f"the model was trained on {', '.join(self.symbols)}, not {symbol.upper()}"
            )
        base = self.config.training_data.timeframes.base()
        if len(bars) > 2:
            spacing = pd.Series(bars.index).diff().dropna().median()
            expected = timeframe_to_timedelta(base)
            if not expected * 0.5 <= spacing <= expected * 3.5:  # weekends stretch daily bars
                problems.append(
                    f"the bars are {spacing} apart but the model was trained on {base} bars"
                )
        if problems and not allow_mismatch:
            raise DataError("; ".join(problems) + " (use --allow-mismatch to score anyway)")
        periods = sample_periods_line(bars.index, self.bundle.metadata, symbol, base)
        if periods:
            problems.append(periods)
        return problems

    def complete_timeframes(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Higher timeframes missing from ``frames`` are resampled from the base timeframe."""
        base = self.config.training_data.timeframes.base()
        if base not in frames:
            raise DataError(f"prediction needs {base} bars (the model's base timeframe)")
        out = dict(frames)
        for tf in self.timeframes:
            if tf not in out:
                out[tf] = resample_ohlcv(frames[base], tf)
        return out

    def predict(self, symbol: str, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """Signals for every bar of ``symbol`` that has complete features (after warm-up)."""
        index = self._symbol_index(symbol)
        data = {symbol: self.complete_timeframes(frames)}
        feats = build_symbol_features(self.config, data)[symbol].frame
        self._check_feature_names(list(feats.columns))
        if feats.empty:
            raise DataError("too few bars: no row has complete features after the warm-up")
        x = torch.from_numpy(self.scaler.transform(feats.to_numpy(np.float32))).to(self.device)
        sym = torch.full((len(feats),), index, dtype=torch.int64, device=self.device)
        logits = predict_logits(self.model, Tensors(x, torch.zeros_like(sym), sym))
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        out = pd.DataFrame(
            {f"prob_{name.lower()}": probs[:, i] for i, name in enumerate(CLASS_NAMES)},
            index=feats.index,
        )
        out.insert(0, "signal", [CLASS_NAMES[i] for i in probs.argmax(axis=1)])
        return out

    def _check_feature_names(self, names: list[str]) -> None:
        if names != self.feature_names:
            raise BundleError(
                "features rebuilt from the stored strategy differ from the model's recorded "
                f"features ({len(names)} vs {len(self.feature_names)} columns)"
            )

    def evaluate_test_split(self, data_dir: Path | str) -> dict[str, Any]:
        """Rebuild the training data exactly as recorded and score the test split again."""
        cfg = self.config
        td = cfg.training_data
        data = load_market_data(
            Path(data_dir),
            self.symbols,
            self.timeframes,
            td.start_date,
            td.end_date,
            td.date_format,
        )
        features = build_symbol_features(cfg, data)
        self._check_feature_names(list(features[self.symbols[0]].frame.columns))
        dataset = build_dataset(self.symbols, features, compute_labels(cfg, data, features))
        split = chronological_split(dataset, cfg.training.data_split)
        rows = split.test
        test = Tensors.from_numpy(
            self.scaler.transform(dataset.x[rows]),
            dataset.y[rows],
            dataset.symbol_idx[rows],
            self.device,
        )
        weights = (
            class_weights(dataset.y[split.train]).to(self.device)
            if cfg.model.training.class_weights == "balanced"
            else None
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
        metrics = evaluate(self.model, test, loss_fn, self.symbols)
        metrics["majority_accuracy"] = majority_accuracy(dataset.y[split.train], dataset.y[rows])
        return metrics
