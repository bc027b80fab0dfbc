"""ktrdr.config: the KTRDR v2 strategy schema, its loader, and the library's settings."""

from ktrdr.config.loader import (
    apply_overrides,
    load_strategy,
    parse_strategy,
    parse_strategy_with_fields,
    strategy_from_dict,
)
from ktrdr.config.settings import LibrarySettings
from ktrdr.config.strategy import (
    ArchitectureConfig,
    DataSplitConfig,
    EarlyStoppingConfig,
    FeaturesConfig,
    FuzzySetConfig,
    IndicatorConfig,
    LabelsConfig,
    LRSchedulerConfig,
    ModelConfig,
    ModelTrainingConfig,
    StrategyConfig,
    SymbolsConfig,
    TimeframesConfig,
    TrainingConfig,
    TrainingDataConfig,
)
from ktrdr.config.summary import strategy_summary

__all__ = [
    "ArchitectureConfig",
    "DataSplitConfig",
    "EarlyStoppingConfig",
    "FeaturesConfig",
    "FuzzySetConfig",
    "IndicatorConfig",
    "LRSchedulerConfig",
    "LabelsConfig",
    "LibrarySettings",
    "ModelConfig",
    "ModelTrainingConfig",
    "StrategyConfig",
    "SymbolsConfig",
    "TimeframesConfig",
    "TrainingConfig",
    "TrainingDataConfig",
    "apply_overrides",
    "load_strategy",
    "parse_strategy",
    "parse_strategy_with_fields",
    "strategy_from_dict",
    "strategy_summary",
]
