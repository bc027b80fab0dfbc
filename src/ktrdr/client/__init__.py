"""Python client of the KTRDR backend, for notebooks and scripts.

from ktrdr.client import TrainingClient
client = TrainingClient("127.0.0.1:50052")
result = client.train("examples/strategies/rsi_single.yaml", mode="host")
"""

from ktrdr.client.errors import KtrdrClientError, KtrdrServiceError, OperationFailedError
from ktrdr.client.hosts import HostInfo
from ktrdr.client.local_services import LocalServices
from ktrdr.client.models import ModelDetails, ModelSpec, parse_model_ref
from ktrdr.client.progress import ProgressDisplay
from ktrdr.client.records import ModelInfo, ModelRef, OperationInfo, StrategyInfo, frame
from ktrdr.client.results import TrainingResult
from ktrdr.client.sweeps import (
    BacktestOverfittingInfo,
    DeflatedSharpeInfo,
    SweepInfo,
    TrialInfo,
    trials_table,
)
from ktrdr.client.training_client import (
    BACKEND_ADDRESS_ENV,
    DEFAULT_BACKEND_ADDRESS,
    TrainingClient,
    TrainingRun,
    default_backend_address,
)

__all__ = [
    "BACKEND_ADDRESS_ENV",
    "DEFAULT_BACKEND_ADDRESS",
    "BacktestOverfittingInfo",
    "DeflatedSharpeInfo",
    "HostInfo",
    "KtrdrClientError",
    "KtrdrServiceError",
    "LocalServices",
    "ModelDetails",
    "ModelInfo",
    "ModelRef",
    "ModelSpec",
    "OperationFailedError",
    "OperationInfo",
    "ProgressDisplay",
    "StrategyInfo",
    "SweepInfo",
    "TrainingClient",
    "TrainingResult",
    "TrainingRun",
    "TrialInfo",
    "default_backend_address",
    "frame",
    "parse_model_ref",
    "trials_table",
]
