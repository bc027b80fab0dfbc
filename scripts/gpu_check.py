"""Checks that need an accelerator, as one short script (for a machine with a GPU).

    python scripts/gpu_check.py [--device cuda]

1. The library: ``auto`` picks the GPU; a training on it records the device, evaluates on it,
   is reproducible run to run, and a stored model reproduces its test metrics on the GPU.
2. Training throughput on the GPU beside the CPU, same strategy and data, in one process.
3. The services: a host started with ``auto`` reports the GPU in GetCapabilities, and the
   backend's ``auto`` mode with ``require_gpu`` sends the training to that host.

On a machine without the device it says so and runs the same checks on the CPU (so the
script itself stays tested), exiting 0; any failed check exits 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from ktrdr.client import LocalServices
from ktrdr.config import parse_strategy
from ktrdr.errors import DeviceError
from ktrdr.storage import ModelStorage
from ktrdr.training.device import resolve_device
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "samples"
STRATEGY = REPO / "examples" / "strategies" / "rsi_single.yaml"
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)


def library(device: str, work: Path) -> None:
    print(f"library on {device}:")
    config = parse_strategy(STRATEGY.read_text())
    executor = TrainingExecutor(DATA, device=device)
    started = time.perf_counter()
    first = executor.run(config)
    elapsed = time.perf_counter() - started
    second = executor.run(config)
    meta = first.bundle.metadata
    check(meta["device"]["type"] == device.split(":")[0], f"bundle records {meta['device']}")
    same = all(torch.equal(v, second.bundle.weights[k]) for k, v in first.bundle.weights.items())
    check(same, "two seeded runs give identical weights")
    check(first.metrics["test"] == second.metrics["test"], "and identical test metrics")
    stored = ModelStorage(work / "models").save(first.bundle)
    again = Predictor.load(stored.path, device=device).evaluate_test_split(DATA)
    check(again == first.metrics["test"], "stored model reproduces its test metrics")
    rate = first.metrics["training"]["train_samples_per_s"]
    print(f"  training {elapsed:.1f} s, {rate:,.0f} samples/s on {device}")


def services(device: str, work: Path) -> None:
    print("services:")
    with LocalServices(work_dir=work / "services", market_data_dir=DATA) as svc:
        client = svc.client()
        has_gpu = device != "cpu"
        try:
            result = client.train(STRATEGY, mode="auto", require_gpu=has_gpu, progress=False)
            check(result.ok, f"auto mode trained: {result.mode} ({result.mode_reason})")
            check((result.mode == "host") == has_gpu, "a GPU host is preferred when present")
            check(result.device.startswith(device.split(":")[0]), f"device {result.device}")
        finally:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    try:
        device = str(resolve_device(args.device).device)
        print(f"device: {resolve_device(args.device)}")
    except DeviceError as exc:
        print(f"no {args.device} here ({exc}); running the checks on the CPU")
        device = "cpu"
    print(f"auto resolves to: {resolve_device('auto')}")
    with tempfile.TemporaryDirectory() as tmp:
        library(device, Path(tmp))
        if device != "cpu":
            library("cpu", Path(tmp) / "cpu")
        services(device, Path(tmp))
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
