"""``ktrdr backend serve``: run the Backend gRPC service."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    backend = sub.add_parser(
        "backend",
        help="the Backend gRPC service",
        formatter_class=formatter,
        description="The Backend gRPC service.\n\nexample:\n  ktrdr backend serve "
        "--host-address 10.0.0.5:50051",
    )
    bsub = backend.add_subparsers(dest="backend_command", metavar="COMMAND", required=True)
    serve = bsub.add_parser(
        "serve",
        help="run the backend until SIGINT/SIGTERM",
        formatter_class=formatter,
        description="Run the backend. Options override the environment (KTRDR_BACKEND_*, "
        "TRAINING_DEFAULT_MODE).\n\nexamples:\n  ktrdr backend serve\n  ktrdr backend serve "
        "--address 0.0.0.0:50052 --host-address gpu1:50051 --host-address gpu2:50051 \\\n"
        "      --results-address backend.lan:50052 --data-dir /var/lib/ktrdr\n"
        "  TRAINING_DEFAULT_MODE=local ktrdr backend serve --data-dir .ktrdr/backend",
    )
    serve.add_argument("--address", default=None, help="listen HOST:PORT (default 127.0.0.1:50052)")
    serve.add_argument(
        "--host-address",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="a training host; repeat for several, in order of preference",
    )
    serve.add_argument(
        "--results-address", default=None, help="address hosts send models to (default: --address)"
    )
    serve.add_argument("--data-dir", type=Path, default=None, help="SQLite database and models/")
    serve.add_argument("--strategies-dir", type=Path, default=None, help="strategy files")
    serve.add_argument("--market-data-dir", type=Path, default=None, help="OHLCV for local runs")
    serve.add_argument(
        "--default-mode",
        choices=("auto", "local", "host"),
        default=None,
        help="default execution mode (default: TRAINING_DEFAULT_MODE or auto)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from ktrdr.backend import BackendSettings, serve

    overrides = {
        "address": args.address,
        "host_addresses": args.host_address,
        "results_address": args.results_address,
        "data_dir": args.data_dir,
        "strategies_dir": args.strategies_dir,
        "market_data_dir": args.market_data_dir,
        "default_mode": args.default_mode,
    }
    settings = BackendSettings(**{k: v for k, v in overrides.items() if v is not None})
    if args.verbose <= 0:  # a server reports what it does
        logging.getLogger("ktrdr").setLevel(logging.INFO)
    asyncio.run(serve(settings))
    return 0
