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
    add_server_security_options(serve, "KTRDR_BACKEND_")
    add_operability_options(serve, "KTRDR_BACKEND_")
    serve.set_defaults(handler=_serve)

    tokens = bsub.add_parser(
        "tokens",
        help="create, list and revoke the backend's bearer tokens",
        formatter_class=formatter,
        description="Manage the bearer tokens of a backend. Works on the backend's database "
        "directly,\nalso while the backend runs (a change takes effect within seconds).\n\n"
        "roles: viewer (read), trainer (also train, cancel its own), admin (everything),\n"
        "       host (a training host delivering models: SubmitResults only)\n\n"
        "examples:\n  ktrdr backend tokens create alice --role trainer\n"
        "  ktrdr backend tokens create gpu1 --role host --data-dir /var/lib/ktrdr\n"
        "  ktrdr backend tokens list\n  ktrdr backend tokens revoke alice",
    )
    tsub = tokens.add_subparsers(dest="tokens_command", metavar="COMMAND", required=True)
    create = tsub.add_parser("create", help="create a token; prints it once on stdout")
    create.add_argument("name", help="who the token is for (letters, digits, . _ @ -)")
    create.add_argument(
        "--role", required=True, choices=("viewer", "trainer", "admin", "host"), help="its role"
    )
    listing = tsub.add_parser("list", help="list tokens (names and roles, never the tokens)")
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    revoke = tsub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    for p in (create, listing, revoke):
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the backend's data directory (default: $KTRDR_BACKEND_DATA_DIR or "
            ".ktrdr/backend)",
        )
    tokens.set_defaults(handler=_tokens)


def add_server_security_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    """TLS and authentication options of a server (defaults from the environment)."""
    parser.add_argument("--tls-cert", type=Path, default=None, help=f"PEM ({prefix}TLS_CERT)")
    parser.add_argument("--tls-key", type=Path, default=None, help=f"PEM ({prefix}TLS_KEY)")
    parser.add_argument(
        "--tls-ca", type=Path, default=None, help=f"CA of client certificates ({prefix}TLS_CA)"
    )
    parser.add_argument(
        "--tls-require-client-cert",
        action="store_const",
        const=True,
        default=None,
        help="require client certificates (mTLS)",
    )
    parser.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        default=None,
        help="allow plaintext on a non-loopback address",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_const",
        const=True,
        default=None,
        help="serve without authentication (loopback addresses only)",
    )


def add_operability_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    """Metrics endpoint and log format of a server (README "Operations")."""
    parser.add_argument(
        "--metrics-address",
        default=None,
        metavar="HOST:PORT",
        help=f"serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9464 "
        f"({prefix}METRICS_ADDRESS; default: off)",
    )
    parser.add_argument(
        "--metrics-allow-remote",
        action="store_const",
        const=True,
        default=None,
        help="allow a non-loopback --metrics-address (no TLS, no auth on it)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help=f"log lines as text or one JSON object per line ({prefix}LOG_FORMAT; default text)",
    )


def operability_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "metrics_address": args.metrics_address,
        "metrics_allow_remote": args.metrics_allow_remote,
        "log_format": args.log_format,
    }


def configure_service_logging(log_format: str) -> None:
    """JSON lines from here on when asked (text keeps the CLI's setup)."""
    if log_format == "json":
        from ktrdr.log_format import configure

        configure("json")


def security_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "tls_ca": args.tls_ca,
        "tls_require_client_cert": args.tls_require_client_cert,
        "insecure": args.insecure,
        "insecure_no_auth": args.insecure_no_auth,
    }


def _serve(args: argparse.Namespace) -> int:
    import logging
    import sys

    from pydantic import ValidationError

    from ktrdr.backend import BackendSettings, serve
    from ktrdr.security.tls import SecurityConfigError
    from ktrdr.tracing import TracingConfigError

    overrides = {
        **security_overrides(args),
        **operability_overrides(args),
        "address": args.address,
        "host_addresses": args.host_address,
        "results_address": args.results_address,
        "data_dir": args.data_dir,
        "strategies_dir": args.strategies_dir,
        "market_data_dir": args.market_data_dir,
        "default_mode": args.default_mode,
    }
    try:
        settings = BackendSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"error: invalid backend settings: {problems}", file=sys.stderr)
        return 2
    configure_service_logging(settings.log_format)
    if args.verbose <= 0:  # a server reports what it does
        logging.getLogger("ktrdr").setLevel(logging.INFO)
    from ktrdr.backend.database import DatabaseBusy, WalRefused
    from ktrdr.backend.tracking.mlflow_runs import TrackingUnavailable
    from ktrdr.service.parent_watch import watch_parent_from_env

    watch_parent_from_env()
    try:
        asyncio.run(serve(settings))
    except (
        SecurityConfigError,
        TracingConfigError,
        TrackingUnavailable,
        OSError,
        WalRefused,
        DatabaseBusy,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _tokens(args: argparse.Namespace) -> int:
    import os
    import sys
    from datetime import UTC, datetime

    from ktrdr.backend.auth.token_store import TokenError, TokenStore
    from ktrdr.backend.database import DatabaseBusy

    data_dir = args.data_dir or Path(os.environ.get("KTRDR_BACKEND_DATA_DIR") or ".ktrdr/backend")
    store = TokenStore(data_dir / "backend.db")
    try:
        if args.tokens_command == "create":
            print(store.create(args.name, args.role))
            print(
                f"token {args.name!r} ({args.role}) created; it is shown only this once",
                file=sys.stderr,
            )
        elif args.tokens_command == "revoke":
            store.revoke(args.name)
            print(f"token {args.name!r} revoked")
        else:
            rows = store.list(include_revoked=args.all)
            if not rows:
                print("no tokens")
            for info in rows:
                created = datetime.fromtimestamp(info.created_us / 1e6, UTC)
                state = "active" if info.active else "revoked"
                print(f"{info.name:<24} {info.role:<8} {state:<8} {created:%Y-%m-%d %H:%M:%S}Z")
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DatabaseBusy as exc:  # the backend (or another command) holds the write lock
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0
