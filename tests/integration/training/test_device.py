"""Device resolution from a machine's inventory, and the probe that keeps services torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ktrdr.errors import DeviceError
from ktrdr.training.device import DeviceInventory, _inventory_in_process, machine_inventory

TWO_GPUS = DeviceInventory(cuda=(("H200", 141 << 30), ("L4", 24 << 30)), torch_version="2.13.0")
CPU_ONLY = DeviceInventory(torch_version="2.13.0")


def test_auto_prefers_cuda_then_mps_then_cpu() -> None:
    assert TWO_GPUS.resolve("auto").spec == "cuda:0"
    assert DeviceInventory(mps=True).resolve("auto").spec == "mps"
    assert CPU_ONLY.resolve("").spec == "cpu"


def test_a_numbered_gpu_carries_its_name_and_memory() -> None:
    info = TWO_GPUS.resolve("CUDA:1")
    assert (info.type, info.name, info.memory_bytes, info.index) == ("cuda", "L4", 24 << 30, 1)
    assert str(info) == "cuda (L4)"


@pytest.mark.parametrize(
    ("inventory", "requested", "message"),
    [
        (CPU_ONLY, "cuda", "device 'cuda' requested but CUDA is not available"),
        (TWO_GPUS, "cuda:2", "device 'cuda:2' requested but only 2 GPU(s) exist"),
        (CPU_ONLY, "mps", "device 'mps' requested but Apple MPS is not available here"),
        (CPU_ONLY, "tpu", "unknown device 'tpu'"),
        (TWO_GPUS, "cuda:x", "unknown device 'cuda:x'"),
        (CPU_ONLY, "cpu:1", "unknown device 'cpu:1'"),
    ],
)
def test_missing_or_unknown_devices_are_clear_errors(
    inventory: DeviceInventory, requested: str, message: str
) -> None:
    with pytest.raises(DeviceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inventory.resolve(requested)


def test_the_probe_reports_what_torch_reports_here() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "ktrdr.training.device"], capture_output=True, text=True, check=True
    )
    assert DeviceInventory.from_json(probe.stdout) == _inventory_in_process()


def test_a_service_finds_its_devices_without_loading_torch() -> None:
    code = (
        "import sys\n"
        "from ktrdr.training.device import machine_inventory, resolve_device\n"
        "print(resolve_device('cpu').spec, machine_inventory().torch_version != '', "
        "'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu", "True", "False"]


def test_training_code_gets_a_torch_device() -> None:
    import torch

    assert machine_inventory().resolve("cpu").device == torch.device("cpu")
