"""Choosing the compute device: CUDA, then MPS, then CPU, unless a setting says otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktrdr.errors import DeviceError

if TYPE_CHECKING:  # torch loads when a device is resolved, not for DEVICE_CHOICES
    import torch

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceInfo:
    """What a run will use: the torch device plus a human-readable name."""

    device: torch.device
    type: str  # "cpu" | "cuda" | "mps"
    name: str
    memory_bytes: int = 0  # accelerator memory, 0 for the CPU

    def __str__(self) -> str:
        return f"{self.type} ({self.name})"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str = "auto") -> DeviceInfo:
    """Turn ``auto|cpu|cuda|mps`` (or ``cuda:N``) into a ``DeviceInfo``.

    Raises ``DeviceError`` when the requested device is not present on this machine.
    """
    import torch

    choice = (requested or "auto").strip().lower()
    base = choice.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(
            f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if base == "auto":
        if torch.cuda.is_available():
            return resolve_device("cuda")
        if _mps_available():
            return resolve_device("mps")
        return resolve_device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "device 'cuda' requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use 'auto' or 'cpu'"
            )
        device = torch.device(choice)
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {choice!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        props = torch.cuda.get_device_properties(index)
        return DeviceInfo(torch.device("cuda", index), "cuda", props.name, props.total_memory)
    if base == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' requested but Apple MPS is not available here")
        return DeviceInfo(torch.device("mps"), "mps", "Apple MPS")
    return DeviceInfo(torch.device("cpu"), "cpu", "CPU")
