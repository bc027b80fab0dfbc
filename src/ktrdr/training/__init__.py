"""Training: the executor and its supporting pieces.

Kept light on purpose: the generated gRPC code lives in ``ktrdr.training.v1`` and importing
it must not pull in PyTorch. Heavy names are re-exported lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CancellationToken",
    "ProgressEvent",
    "ProgressKind",
    "TrainingExecutor",
    "TrainingResult",
]

_LAZY = {
    "CancellationToken": "ktrdr.training.cancellation",
    "ProgressEvent": "ktrdr.training.progress",
    "ProgressKind": "ktrdr.training.progress",
    "TrainingExecutor": "ktrdr.training.executor",
    "TrainingResult": "ktrdr.training.executor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ktrdr.training' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
