"""One-command demo (``make demo``): a host and a backend on free loopback ports, one training
through the backend in host mode, its metrics (trading metrics against the baselines too), the
model list and a plot; both services are stopped at the end, also on Ctrl-C or SIGTERM.

    .venv/bin/python scripts/demo.py [--strategy FILE] [--epochs N] [--work-dir .demo]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--strategy", type=Path, default=REPO / "examples" / "strategies" / "rsi_single.yaml"
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the strategy's epochs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, default=REPO / ".demo")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)

    import yaml

    from ktrdr.cli.summary import trading_summary
    from ktrdr.client import LocalServices, TrainingClient, frame
    from ktrdr.plots import save_training_plot

    began = time.monotonic()
    work_dir: Path = args.work_dir.resolve()
    shutil.rmtree(work_dir / "services", ignore_errors=True)
    strategy_text = args.strategy.read_text()
    if args.epochs:
        strategy = yaml.safe_load(strategy_text)
        strategy["model"]["training"]["epochs"] = args.epochs
        strategy_text = yaml.safe_dump(strategy, sort_keys=False)

    services = LocalServices(
        work_dir=work_dir / "services",
        market_data_dir=REPO / "data" / "samples",
        strategies_dir=REPO / "examples" / "strategies",
    )
    print("== starting a training host and a backend on free loopback ports ...", flush=True)
    try:
        services.start()
        print(f"   host    {services.host_address}   (log: {services.work_dir / 'host.log'})")
        print(f"   backend {services.backend_address}   (log: {services.work_dir / 'backend.log'})")
        print(f"   ready after {time.monotonic() - began:.1f} s\n", flush=True)

        # The backend runs on this machine: its model store is readable here (model
        # references are store-relative), and its first admin token is in its data dir.
        os.environ["KTRDR_BACKEND_DATA_DIR"] = str(services.work_dir / "backend")
        with TrainingClient(services.backend_address, token=services.admin_token) as client:
            print(f"== training {args.strategy.name} through the backend in host mode", flush=True)
            result = client.train(strategy_text, mode="host", seed=args.seed)
            print(f"\n   operation {result.operation_id}: {result.status}")
            print(f"   mode      {result.mode} ({result.mode_reason})")
            print(f"   device    {result.device}, training took {result.duration_s:.1f} s\n")
            print("== metrics")
            print(result.metrics_frame().to_string(float_format=lambda v: f"{v:.4f}"))
            per_class = result.per_class_frame()
            if per_class is not None:
                print()
                print(per_class.to_string(float_format=lambda v: f"{v:.3f}"))
            metadata = result.metadata()
            trading = (metadata or {}).get("metrics", {}).get("trading")
            if trading:
                print("\n== the test period traded (strategy vs baselines)")
                print(trading_summary(trading))
            assert result.model is not None
            print(f"\n== model saved by the backend: {result.model.path}")
            print(f"   (strategy {result.model.strategy}, version {result.model.version})\n")

            print("== models on the backend")
            models = frame(client.models())
            print(models[["strategy", "version", "created", "test_accuracy", "path"]].to_string())

            if metadata is not None:
                plot = save_training_plot(metadata, work_dir / "training.png")
                print(f"\n== training curves, confusion matrix and equity curve: {plot}")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the services", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        for name in ("backend", "host"):
            tail = services.log_tail(name, 15)
            if tail:
                print(f"--- last lines of {name}.log ---\n{tail}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not leave a service running: stop without interruption.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        services.stop()
    print(f"\n== services stopped; demo took {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
