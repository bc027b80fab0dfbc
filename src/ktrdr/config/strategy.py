"""The KTRDR v2 strategy schema (typed).

Attribute names are the contract other modules code against. Every check that can be made
without market data lives here as a validator, so ``StrategyConfig.model_validate`` alone
rejects a bad strategy; :mod:`ktrdr.config.loader` turns the errors into ``field.path: problem``
lines and raises ``StrategyConfigError`` listing all of them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ktrdr.config.problems import ConfigProblems, cross_check
from ktrdr.data.symbols import normalize_symbol
from ktrdr.data.timeframes import normalize_timeframe, sort_timeframes
from ktrdr.echo import short_repr
from ktrdr.fuzzy import check_fuzzy_params
from ktrdr.indicators import get_indicator, known_indicators

# Element types (module-level aliases: inside the classes below `list` names a field).
Symbol = Annotated[str, AfterValidator(normalize_symbol)]  # upper-cased, strict pattern
Timeframe = Annotated[str, AfterValidator(normalize_timeframe)]  # canonical lower-case name
MAX_SYMBOLS = 100  # symbols in one strategy (each is a data file and an embedding row)
SymbolList = Annotated[list[Symbol], Field(max_length=MAX_SYMBOLS)]
# Dates a strategy may name: market data has none before 1900, and none after today.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_END_DATE = date(2100, 12, 31)
TimeframeList = list[Timeframe]
StrList = list[str]
# The seed a training uses when the strategy names none: every run is reproducible.
DEFAULT_SEED = 42
PositiveInt = Annotated[int, Field(gt=0)]


def _duplicates(items: StrList) -> StrList:
    """Items that occur more than once, each named once, in order of first repeat."""
    seen: set[str] = set()
    repeated: StrList = []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


class _Lenient(BaseModel):
    """Strict: an unknown key anywhere is an error (with the nearest known key).

    Keys KTRDR's format has but training does not use (``deployment``, ``decisions``...) are
    declared as ``Any`` fields, accepted, and listed by :meth:`StrategyConfig.notices`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# KTRDR v2 keys that training accepts and ignores: (model, field) -> where in the YAML.
KTRDR_IGNORED: dict[str, tuple[str, ...]] = {
    "StrategyConfig": (
        "deployment",
        "decisions",
        "orchestrator",
        "risk_management",
        "backtesting",
        "nn_inputs",
    ),
    "TrainingDataConfig": ("history_required",),
    "ModelConfig": ("symbol_embedding_dim", "input_size"),
    "ArchitectureConfig": ("output_activation",),
    "TrainingConfig": ("method", "fitness_metrics"),
}
# Why a KTRDR key does nothing here, where "ignored" alone would leave a reader guessing.
KTRDR_REASONS: dict[str, str] = {
    "input_size": "the input size is computed from the features here",
}


class SymbolsConfig(_Lenient):
    mode: Literal["single", "multi_symbol"] = "single"
    symbol: Symbol | None = None  # for mode: single
    list: SymbolList | None = None

    @model_validator(mode="after")
    def _check_mode(self) -> SymbolsConfig:
        if self.mode == "single" and self.symbol is None:
            raise ValueError(
                "mode 'single' needs 'symbol' (for several symbols use mode: multi_symbol "
                "with 'list')"
            )
        if self.mode == "multi_symbol":
            if not self.list:
                raise ValueError("mode 'multi_symbol' needs a non-empty 'list'")
            if dups := _duplicates(self.list):
                raise ValueError(f"duplicate symbol(s) in 'list': {', '.join(dups)}")
        return self

    def resolved(self) -> StrList:
        """Symbols in declared order (upper-cased)."""
        if self.mode == "single":
            return [self.symbol] if self.symbol else []
        return [*(self.list or [])]


class TimeframesConfig(_Lenient):
    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: Timeframe | None = None  # for mode: single
    list: TimeframeList | None = None
    base_timeframe: Timeframe | None = None  # the timeframe every row is a bar of

    @model_validator(mode="after")
    def _check_mode(self) -> TimeframesConfig:
        if self.mode == "single" and self.timeframe is None:
            raise ValueError(
                "mode 'single' needs 'timeframe' (for several use mode: multi_timeframe "
                "with 'list' and 'base_timeframe')"
            )
        if self.mode == "multi_timeframe":
            if not self.list:
                raise ValueError("mode 'multi_timeframe' needs a non-empty 'list'")
            if dups := _duplicates(self.list):
                raise ValueError(f"duplicate timeframe(s) in 'list': {', '.join(dups)}")
            if self.base_timeframe is None:
                raise ValueError("mode 'multi_timeframe' needs 'base_timeframe'")
            if self.base_timeframe not in self.list:
                raise ValueError(
                    f"base_timeframe '{self.base_timeframe}' is not in 'list' "
                    f"({', '.join(self.list)})"
                )
        return self

    def resolved(self) -> StrList:
        """Timeframes, base timeframe first, then the others from finest to coarsest."""
        base = self.base()
        others = (self.list or []) if self.mode == "multi_timeframe" else []
        return [base, *sort_timeframes(tf for tf in others if tf != base)]

    def base(self) -> str:
        """The base timeframe: every training row is one bar of it."""
        base = self.timeframe if self.mode == "single" else self.base_timeframe
        if base is None:  # only possible on an unvalidated (model_construct) instance
            raise ValueError("timeframes have no base timeframe")
        return base


class TrainingDataConfig(_Lenient):
    symbols: SymbolsConfig
    timeframes: TimeframesConfig
    start_date: date | None = None  # inclusive
    end_date: date | None = None  # inclusive, the whole day
    # How the data files write dates: day_first, month_first or a strftime pattern.
    date_format: str | None = None
    history_required: Any = None  # KTRDR; not used

    @field_validator("start_date")
    @classmethod
    def _start_in_the_past(cls, start: date | None) -> date | None:
        if start is not None and not EARLIEST_DATE <= start <= date.today():
            raise ValueError(
                f"{start} is outside {EARLIEST_DATE} .. today ({date.today()}): no data there"
            )
        return start

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        if end is not None and not EARLIEST_DATE <= end <= LATEST_END_DATE:
            raise ValueError(f"{end} is outside {EARLIEST_DATE} .. {LATEST_END_DATE}")
        start = info.data.get("start_date")
        if start is not None and end is not None and start > end:
            raise ValueError(f"{end} is before start_date {start}")
        return end


class IndicatorConfig(BaseModel):
    """One entry of ``indicators``: ``name`` plus the indicator's parameters (flat)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    feature_id: str | None = None  # key used by fuzzy_sets; defaults to the lower-cased name

    @property
    def id(self) -> str:
        return (self.feature_id or self.name).lower()

    @property
    def params(self) -> dict[str, Any]:
        """Parameters given in the YAML (everything but name/feature_id), minus ignored ones."""
        ignored = set(self.ignored_params)
        return {k: v for k, v in (self.model_extra or {}).items() if k not in ignored}

    @property
    def ignored_params(self) -> list[str]:
        """Parameters the indicator cannot use but KTRDR's files give (``source`` on stoch)."""
        try:
            spec = get_indicator(self.name)
        except KeyError:
            return []
        names = {p.name for p in spec.params}
        return [k for k in (self.model_extra or {}) if k == "source" and "source" not in names]

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        name = name.strip()
        try:
            get_indicator(name)
        except KeyError:
            raise ValueError(
                f"unknown indicator {short_repr(name)}; known: {', '.join(known_indicators())}"
            ) from None
        return name

    @field_validator("feature_id")
    @classmethod
    def _non_empty_id(cls, feature_id: str | None) -> str | None:
        if feature_id is not None and not feature_id.strip():
            raise ValueError("must not be empty")
        return feature_id.strip() if feature_id is not None else None

    @model_validator(mode="after")
    def _check_params(self) -> IndicatorConfig:
        problems = get_indicator(self.name).check_params(self.params)
        if problems:
            raise ConfigProblems([((), problem) for problem in problems])
        return self


class FuzzySetConfig(_Lenient):
    type: Literal["triangular", "trapezoidal", "gaussian"]
    parameters: list[float]  # triangular a,b,c; trapezoidal a,b,c,d; gaussian mean,sigma

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # KTRDR's short form `set_name: [a, b, c]` (triangular) or `[a, b, c, d]` (trapezoidal).
        if isinstance(value, list):
            kind = "trapezoidal" if len(value) == 4 else "triangular"
            return {"type": kind, "parameters": value}
        return value

    @field_validator("parameters")
    @classmethod
    def _check_shape(cls, parameters: list[float], info: ValidationInfo) -> list[float]:
        set_type = info.data.get("type")
        if set_type is not None:
            problem = check_fuzzy_params(set_type, parameters)
            if problem:
                raise ValueError(problem)
        return parameters


class ArchitectureConfig(_Lenient):
    hidden_layers: list[PositiveInt] = Field(default_factory=lambda: [64, 32], min_length=1)
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu"] = "relu"
    dropout: float = Field(default=0.2, ge=0, lt=1)
    output_activation: Any = None  # KTRDR; the model always ends in logits + softmax


class FeaturesConfig(_Lenient):
    lookback_periods: int = Field(default=0, ge=0)  # lagged copies of every feature
    include_price_context: bool = False
    scale_features: bool = True


class EarlyStoppingConfig(_Lenient):
    enabled: bool = True
    patience: int = Field(default=10, ge=1)  # epochs without improvement before stopping
    min_delta: float = Field(default=0.0, ge=0)


class LRSchedulerConfig(_Lenient):
    type: Literal["none", "step", "cosine", "plateau"] = "none"
    step_size: int = Field(default=10, gt=0)
    gamma: float = Field(default=0.5, gt=0)
    patience: int = Field(default=5, ge=0)


class ModelTrainingConfig(_Lenient):
    learning_rate: float = Field(default=0.001, gt=0, le=10.0)
    batch_size: int = Field(default=32, gt=0)
    epochs: int = Field(default=50, gt=0)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    weight_decay: float = Field(default=0.0, ge=0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    gradient_clip: float | None = Field(default=None, gt=0)  # max grad norm; None = off
    lr_scheduler: LRSchedulerConfig | None = None
    class_weights: Literal["none", "balanced"] = "none"


class ModelConfig(_Lenient):
    type: Literal["mlp"] = "mlp"
    architecture: ArchitectureConfig = Field(default_factory=ArchitectureConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: ModelTrainingConfig = Field(default_factory=ModelTrainingConfig)
    symbol_embedding_dim: Any = None  # KTRDR; the embedding size follows the symbol count
    input_size: Any = None  # KTRDR; computed from the features (a stale count is no error)


class LabelsConfig(_Lenient):
    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: float = Field(default=0.02, gt=0)  # relative move that makes a new extreme
    # 0 keeps KTRDR's tail (see ktrdr.labels.zigzag); bounded: a window, not a whole history.
    label_lookahead: int = Field(default=20, ge=0, le=100_000)


class DataSplitConfig(_Lenient):
    """One calendar split for all symbols (see :mod:`ktrdr.training.split`)."""

    train: float = Field(default=0.7, gt=0)
    validation: float = Field(default=0.15, ge=0)
    test: float = Field(default=0.15, gt=0)
    # Boundaries as dates (UTC midnight); when given they replace the ratios.
    validation_start: date | None = None
    test_start: date | None = None
    # Rows per symbol dropped after each boundary, on top of the exact label purge.
    embargo_bars: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_sum(self) -> DataSplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1, got {total:g}")
        if self.validation_start is not None and self.test_start is None:
            raise ValueError("validation_start needs test_start")
        if (
            self.validation_start is not None
            and self.test_start is not None
            and self.validation_start > self.test_start
        ):
            raise ValueError("validation_start must not be after test_start")
        return self


class TrainingConfig(_Lenient):
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)
    method: Any = None  # KTRDR; training is always supervised
    fitness_metrics: Any = None  # KTRDR; not used


class WalkForwardConfig(_Lenient):
    """Walk-forward folds over the period before the test split (see
    :mod:`ktrdr.training.folds`). Bars count the distinct base bar times of every symbol."""

    folds: int = Field(ge=2, le=50)  # models trained, one per fold
    # expanding: every fold trains from the first bar; rolling: on the train_bars before its test
    window: Literal["expanding", "rolling"] = "expanding"
    # rolling only: bars in each fold's training window (its validation part included);
    # default: what the first fold has before its test
    train_bars: PositiveInt | None = None
    # bars in each fold's test; default: the period before the test split in folds + 1 parts
    test_bars: PositiveInt | None = None
    # rows per symbol dropped at the start of each fold's validation and test, on top of the
    # exact label purge (a row whose label needs a price of the next part is always dropped)
    embargo_bars: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _train_bars_rolling(self) -> WalkForwardConfig:
        if self.train_bars is not None and self.window != "rolling":
            raise ValueError(
                "train_bars is the length of a rolling window; an expanding window trains from "
                "the first bar (set window: rolling, or remove train_bars)"
            )
        return self


class EvaluationConfig(_Lenient):
    """Trading metrics on the test period (see :mod:`ktrdr.training.trading`), and the
    optional walk-forward folds before it."""

    cost_bps: float = Field(default=5.0, ge=0)  # per unit of position change, in 1/10000
    allow_short: bool = True  # SELL goes short (else flat)
    # equity_fraction: the whole equity in the position, re-invested every bar (compounding);
    # fixed_units: units bought with the initial equity at the test period's first close.
    position_sizing: Literal["equity_fraction", "fixed_units"] = "equity_fraction"
    # absent: one train/validation/test split (KTRDR's behaviour)
    walk_forward: WalkForwardConfig | None = None


class StrategyConfig(_Lenient):
    # The name names the model directory, so it is held to a safe pattern.
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    version: str = "1.0"
    hypothesis: str = ""
    scope: str = ""
    training_data: TrainingDataConfig
    indicators: list[IndicatorConfig] = Field(min_length=1)
    fuzzy_sets: dict[str, dict[str, FuzzySetConfig]]  # indicator id -> set name -> set
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    deployment: Any = None
    decisions: Any = None
    orchestrator: Any = None
    risk_management: Any = None
    backtesting: Any = None
    nn_inputs: Any = None

    @property
    def training_seed(self) -> tuple[int, str]:
        """The seed training uses and where it comes from ("strategy" or "default")."""
        return (self.seed, "strategy") if self.seed is not None else (DEFAULT_SEED, "default")

    @property
    def active_indicators(self) -> list[IndicatorConfig]:
        """Indicators with fuzzy sets: the only ones computed (KTRDR allowed the others)."""
        return [ind for ind in self.indicators if self.fuzzy_sets.get(ind.id)]

    def notices(self) -> list[str]:
        """What the strategy declares that training does not use (shown, never an error)."""
        out: list[str] = []
        for ind in self.indicators:
            if not self.fuzzy_sets.get(ind.id):
                out.append(
                    f"indicators: '{ind.id}' has no fuzzy sets; it is not computed and feeds "
                    "nothing"
                )
            for key in ind.ignored_params:
                out.append(f"indicators: '{ind.id}' ({ind.name}) cannot use '{key}'; it is ignored")
        places: list[tuple[str, BaseModel]] = [
            ("", self),
            ("training_data.", self.training_data),
            ("model.", self.model),
            ("model.architecture.", self.model.architecture),
            ("training.", self.training),
        ]
        for prefix, obj in places:
            for key in KTRDR_IGNORED.get(type(obj).__name__, ()):
                if getattr(obj, key) is not None:
                    why = KTRDR_REASONS.get(key, "ignored")
                    out.append(f"{prefix}{key}: KTRDR key, not used by training; {why}")
        return out

    @field_validator("name", "description", "version", "hypothesis", "scope", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 2.0` as a float; the schema wants text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("fuzzy_sets")
    @classmethod
    def _lower_case_keys(
        cls, fuzzy_sets: dict[str, dict[str, FuzzySetConfig]]
    ) -> dict[str, dict[str, FuzzySetConfig]]:
        lowered: dict[str, dict[str, FuzzySetConfig]] = {}
        clashes: list[tuple[tuple[str | int, ...], str]] = []
        for key, sets in fuzzy_sets.items():
            if key.lower() in lowered:
                clashes.append(
                    ((key,), f"same indicator id as another key: {short_repr(key.lower())}")
                )
            lowered[key.lower()] = sets
        if clashes:
            raise ConfigProblems(clashes)
        return lowered

    @model_validator(mode="after")
    def _check_cross_references(self) -> StrategyConfig:
        problems = cross_check(
            [ind.id for ind in self.indicators],
            {key: len(sets) for key, sets in self.fuzzy_sets.items()},
        )
        if problems:
            raise ConfigProblems(problems)
        return self
