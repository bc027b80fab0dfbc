"""Choosing the compute device: CUDA, then MPS, then CPU, unless a setting says otherwise."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktrdr.errors import DeviceError

if TYPE_CHECKING:  # torch loads only for DeviceInfo.device and the in-process inventory
    import torch

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceInfo:
    """What a run will use: the device's kind, index and a human-readable name.

    Pure data: a service can resolve and report a device without importing torch; the
    ``device`` property (what training code hands to torch) imports it.
    """

    type: str  # "cpu" | "cuda" | "mps"
    name: str
    memory_bytes: int = 0  # accelerator memory, 0 for the CPU
    index: int | None = None  # the CUDA device number

    @property
    def spec(self) -> str:
        """The torch device string: ``cpu``, ``mps`` or ``cuda:N``."""
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self.spec)

    def __str__(self) -> str:
        return f"{self.type} ({self.name})"


@dataclass(frozen=True)
class DeviceInventory:
    """The devices one machine has: its GPUs (name, memory) and whether Apple MPS works."""

    cuda: tuple[tuple[str, int], ...] = ()
    mps: bool = False
    torch_version: str = ""

    def resolve(self, requested: str = "auto") -> DeviceInfo:
        """Turn ``auto|cpu|cuda|mps`` (or ``cuda:N``) into a ``DeviceInfo``.

        Raises ``DeviceError`` when the requested device is not on this machine.
        """
        choice = (requested or "auto").strip().lower()
        base, _, number = choice.partition(":")
        if base not in DEVICE_CHOICES or (number and (base != "cuda" or not number.isdigit())):
            raise DeviceError(
                f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)} "
                "(or cuda:N)"
            )
        if base == "auto":
            return self.resolve("cuda" if self.cuda else "mps" if self.mps else "cpu")
        if base == "cuda":
            if not self.cuda:
                raise DeviceError(
                    "device 'cuda' requested but CUDA is not available on this machine "
                    f"(torch {self.torch_version}); use 'auto' or 'cpu'"
                )
            index = int(number) if number else 0
            if index >= len(self.cuda):
                raise DeviceError(
                    f"device {choice!r} requested but only {len(self.cuda)} GPU(s) exist"
                )
            name, memory = self.cuda[index]
            return DeviceInfo("cuda", name, memory, index)
        if base == "mps":
            if not self.mps:
                raise DeviceError("device 'mps' requested but Apple MPS is not available here")
            return DeviceInfo("mps", "Apple MPS")
        return DeviceInfo("cpu", "CPU")

    def to_json(self) -> str:
        return json.dumps({"cuda": self.cuda, "mps": self.mps, "torch": self.torch_version})

    @classmethod
    def from_json(cls, text: str) -> DeviceInventory:
        data = json.loads(text)
        cuda = tuple((str(name), int(memory)) for name, memory in data["cuda"])
        return cls(cuda, bool(data["mps"]), str(data["torch"]))


def _inventory_in_process() -> DeviceInventory:
    import torch

    cuda: tuple[tuple[str, int], ...] = ()
    if torch.cuda.is_available():
        props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        cuda = tuple((p.name, int(p.total_memory)) for p in props)
    backend = getattr(torch.backends, "mps", None)
    mps = bool(backend is not None and backend.is_available())
    return DeviceInventory(cuda, mps, str(torch.__version__))


PROBE_TIMEOUT_S = 120.0  # importing torch and initialising CUDA on a cold machine


def _inventory_from_probe() -> DeviceInventory:
    """The inventory, asked of a fresh interpreter so that this process never loads torch."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ktrdr.training.device"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(f"the device probe did not answer in {PROBE_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeviceError(f"the device probe failed: {last}")
    return DeviceInventory.from_json(result.stdout.strip().splitlines()[-1])


_lock = threading.Lock()
_inventory: DeviceInventory | None = None


def machine_inventory() -> DeviceInventory:
    """This machine's devices, found once per process.

    Where torch is already loaded (a worker, a notebook) it is asked directly; elsewhere (the
    serving processes) a short-lived probe process asks it, so the service stays torch-free.
    """
    global _inventory
    with _lock:
        if _inventory is None:
            probe = _inventory_in_process if "torch" in sys.modules else _inventory_from_probe
            _inventory = probe()
        return _inventory


def present_everywhere(requested: str) -> bool:
    """Whether ``requested`` names a device every machine has (``cpu``, ``auto``): checking it
    needs no inventory (a service then starts no probe process, which imports torch)."""
    return (requested or "auto").strip().lower() in ("auto", "cpu")


def resolve_device(requested: str = "auto") -> DeviceInfo:
    """Turn ``auto|cpu|cuda|mps`` (or ``cuda:N``) into a ``DeviceInfo`` on this machine.

    Raises ``DeviceError`` when the requested device is not present on this machine.
    """
    return machine_inventory().resolve(requested)


if __name__ == "__main__":  # the probe: one JSON line describing this machine's devices
    print(_inventory_in_process().to_json())
