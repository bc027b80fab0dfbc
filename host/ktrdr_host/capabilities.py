"""What GetCapabilities reports: the device, its memory, versions and session capacity."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

import ktrdr
from ktrdr.training.device import DeviceInfo, machine_inventory
from ktrdr.training.v1 import host_pb2

_DEVICE_TYPES = {
    "cpu": host_pb2.DEVICE_TYPE_CPU,
    "cuda": host_pb2.DEVICE_TYPE_CUDA,
    "mps": host_pb2.DEVICE_TYPE_MPS,
}


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or a generic description."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def describe_host(
    device: DeviceInfo, *, max_sessions: int, active_sessions: int, accepting: bool
) -> host_pb2.GetCapabilitiesResponse:
    """The GetCapabilities answer for a host whose default device is ``device``."""
    return host_pb2.GetCapabilitiesResponse(
        device_type=_DEVICE_TYPES.get(device.type, host_pb2.DEVICE_TYPE_UNSPECIFIED),
        device_name=cpu_name() if device.type == "cpu" else device.name,
        accelerator_memory_bytes=device.memory_bytes if device.type != "cpu" else 0,
        ktrdr_version=ktrdr.__version__,
        torch_version=machine_inventory().torch_version,
        python_version=platform.python_version(),
        max_sessions=max_sessions,
        active_sessions=active_sessions,
        accepting=accepting,
    )


__all__ = ["cpu_name", "describe_host"]
