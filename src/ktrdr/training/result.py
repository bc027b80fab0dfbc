"""What a finished training returns (light: the services hold results without torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ktrdr.storage.bundle import ModelBundle


@dataclass(frozen=True)
class TrainingResult:
    """What a finished run returns: the bundle and the headline numbers."""

    bundle: ModelBundle
    metrics: dict[str, Any]
    summary: dict[str, float]
    device: str
    duration_s: float
    step_times: dict[str, float] = field(default_factory=dict)


__all__ = ["TrainingResult"]
