"""The KTRDR v2 strategy schema (typed).

SKELETON written by the lead: attribute names are the contract other modules code against.
The config helper completes validation (cross-field checks, error paths) and loading.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    """Unknown keys (``deployment``, ``decisions``...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SymbolsConfig(_Lenient):
    mode: Literal["single", "multi_symbol"] = "single"
    symbol: str | None = None
    list: list[str] | None = None  # noqa: A003  (the YAML key is `list`)

    def resolved(self) -> list[str]:
        """Symbols in declared order (upper-cased)."""
        raise NotImplementedError


class TimeframesConfig(_Lenient):
    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: str | None = None
    list: list[str] | None = None  # noqa: A003
    base_timeframe: str | None = None

    def resolved(self) -> list[str]:
        """Timeframes, base timeframe first, then the others from finest to coarsest."""
        raise NotImplementedError

    def base(self) -> str:
        raise NotImplementedError


class TrainingDataConfig(_Lenient):
    symbols: SymbolsConfig
    timeframes: TimeframesConfig
    start_date: date | None = None
    end_date: date | None = None


class IndicatorConfig(BaseModel):
    """One entry of ``indicators``: ``name`` plus the indicator's parameters (flat)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    feature_id: str | None = None  # key used by fuzzy_sets; defaults to the lower-cased name

    @property
    def id(self) -> str:  # noqa: A003
        return (self.feature_id or self.name).lower()

    @property
    def params(self) -> dict[str, Any]:
        """Parameters given in the YAML (everything but name/feature_id)."""
        return dict(self.model_extra or {})


class FuzzySetConfig(_Lenient):
    type: Literal["triangular", "trapezoidal", "gaussian"]  # noqa: A003
    parameters: list[float]


class ArchitectureConfig(_Lenient):
    hidden_layers: list[int] = Field(default_factory=lambda: [64, 32])
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu"] = "relu"
    dropout: float = 0.2


class FeaturesConfig(_Lenient):
    lookback_periods: int = 0
    include_price_context: bool = False
    scale_features: bool = True


class EarlyStoppingConfig(_Lenient):
    enabled: bool = True
    patience: int = 10
    min_delta: float = 0.0


class LRSchedulerConfig(_Lenient):
    type: Literal["none", "step", "cosine", "plateau"] = "none"  # noqa: A003
    step_size: int = 10
    gamma: float = 0.5
    patience: int = 5


class ModelTrainingConfig(_Lenient):
    learning_rate: float = 0.001
    batch_size: int = 32
    epochs: int = 50
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    weight_decay: float = 0.0
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    gradient_clip: float | None = None
    lr_scheduler: LRSchedulerConfig | None = None
    class_weights: Literal["none", "balanced"] = "none"


class ModelConfig(_Lenient):
    type: Literal["mlp"] = "mlp"  # noqa: A003
    architecture: ArchitectureConfig = Field(default_factory=ArchitectureConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: ModelTrainingConfig = Field(default_factory=ModelTrainingConfig)


class LabelsConfig(_Lenient):
    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: float = 0.02
    label_lookahead: int = 20


class DataSplitConfig(_Lenient):
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15


class TrainingConfig(_Lenient):
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)


class StrategyConfig(_Lenient):
    name: str
    description: str = ""
    version: str = "1.0"
    hypothesis: str = ""
    scope: str = ""
    training_data: TrainingDataConfig
    indicators: list[IndicatorConfig]
    fuzzy_sets: dict[str, dict[str, FuzzySetConfig]]
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    seed: int | None = None
