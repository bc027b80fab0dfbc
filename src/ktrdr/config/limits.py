"""Upper bounds on the work one strategy may ask for, checked when it is validated.

A service refuses ``epochs: 1000000000`` or ``hidden_layers: [100000, 100000]`` at once,
with the field path, instead of failing (or exhausting memory) hours later. The defaults are
far above what a real strategy uses (the examples train 30-100 epochs of 2-3 layers of at
most 128 units); both services make every bound configurable (``KTRDR_BACKEND_MAX_EPOCHS``,
``KTRDR_HOST_MAX_EPOCHS``...).

Total parameters: the MLP's weights and biases, input -> hidden layers -> 3 classes, plus
the symbol embedding of a multi-symbol strategy. The input width is the feature count,
known from the strategy alone (no market data): fuzzy sets of every indicator x timeframes
x (1 + lookback_periods), plus the price-context features. This is exactly the width the
feature pipeline builds (:mod:`ktrdr.features.pipeline`; a test compares both), so the
bound is the real model size. Layer count and widths are checked first; the parameter
count only when they are within bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktrdr.config.strategy import StrategyConfig

N_CLASSES = 3  # buy / hold / sell
PRICE_CONTEXT_WIDTH = 7  # ktrdr.features.pipeline.PRICE_CONTEXT_FEATURES


@dataclass(frozen=True)
class WorkLimits:
    """The largest training a service accepts; every bound is inclusive."""

    max_epochs: int = 10_000
    max_layers: int = 16  # hidden layers
    max_layer_width: int = 8192  # units of one hidden layer
    max_parameters: int = 50_000_000  # weights + biases of the whole model
    max_lookback: int = 1000  # model.features.lookback_periods
    max_batch_size: int = 65_536

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WorkLimits.{name} must be a positive integer, got {value!r}")


def feature_count(config: StrategyConfig) -> int:
    """Input width of the model ``config`` trains (see the module docstring)."""
    memberships = sum(len(config.fuzzy_sets.get(ind.id, {})) for ind in config.indicators)
    memberships *= len(config.training_data.timeframes.resolved())
    features = config.model.features
    width = memberships * (1 + features.lookback_periods)
    return width + (PRICE_CONTEXT_WIDTH if features.include_price_context else 0)


def embedding_dim(n_symbols: int) -> int:
    """Width of the symbol embedding (as ``ktrdr.models.mlp.embedding_dim_for``, no torch)."""
    return 0 if n_symbols <= 1 else min(8, max(2, n_symbols))


def parameter_count(n_features: int, hidden_layers: list[int], n_symbols: int = 1) -> int:
    """Weights and biases of the MLP: features + symbol embedding -> hidden -> 3 classes."""
    embed = embedding_dim(n_symbols)
    total, width_in = n_symbols * embed if embed else 0, n_features + embed
    for width in [*hidden_layers, N_CLASSES]:
        total += width_in * width + width
        width_in = width
    return total


def check_work_limits(config: StrategyConfig, limits: WorkLimits | None = None) -> list[str]:
    """Every bound of ``limits`` that ``config`` exceeds, as ``field.path: problem``."""
    limits = limits or WorkLimits()
    model = config.model
    problems: list[str] = []

    def over(path: str, value: int, limit: int, what: str = "") -> None:
        if value > limit:
            problems.append(f"{path}: at most {limit}{what}, got {value}")

    over("model.training.epochs", model.training.epochs, limits.max_epochs)
    over("model.training.batch_size", model.training.batch_size, limits.max_batch_size)
    over("model.features.lookback_periods", model.features.lookback_periods, limits.max_lookback)
    layers = model.architecture.hidden_layers
    over("model.architecture.hidden_layers", len(layers), limits.max_layers, " layers")
    wide = [i for i, width in enumerate(layers) if width > limits.max_layer_width]
    for i in wide[:3]:  # the first few are enough to act on
        over(f"model.architecture.hidden_layers[{i}]", layers[i], limits.max_layer_width, " units")
    if len(problems) == 0:  # the count is only meaningful once the shape is within bounds
        n_features = feature_count(config)
        n_symbols = len(config.training_data.symbols.resolved())
        params = parameter_count(n_features, layers, n_symbols)
        over(
            "model.architecture",
            params,
            limits.max_parameters,
            f" parameters (weights and biases for {n_features} input features)",
        )
    return problems


__all__ = ["WorkLimits", "check_work_limits", "embedding_dim", "feature_count", "parameter_count"]
