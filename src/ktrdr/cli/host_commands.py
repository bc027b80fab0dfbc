"""``ktrdr host serve`` starts the training host; ``ktrdr host capabilities`` asks one."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ktrdr.cli import spool_commands
from ktrdr.cli.backend_commands import (
    add_operability_options,
    add_server_security_options,
    configure_service_logging,
    operability_overrides,
    security_overrides,
)
from ktrdr.cli.client_commands import add_tls_options, tls_from_args

DEFAULT_ADDRESS = "127.0.0.1:50051"


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    host = sub.add_parser(
        "host",
        help="run or query a training host (gRPC TrainingHost)",
        formatter_class=formatter,
        description="Run or query a training host.\n\nexamples:\n  ktrdr host serve --address "
        "0.0.0.0:50051\n  ktrdr host serve --backend 127.0.0.1:50052\n  ktrdr host capabilities "
        "--address gpu-box:50051",
    )
    hsub = host.add_subparsers(dest="host_command", metavar="COMMAND", required=True)

    serve = hsub.add_parser(
        "serve",
        help="start the training host and serve until SIGTERM/SIGINT",
        formatter_class=formatter,
        description="Start the training host. Settings come from KTRDR_HOST_* environment\n"
        "variables (see the README); the options below override them. On SIGTERM or\n"
        "Ctrl-C the host stops accepting sessions, lets running ones finish within\n"
        "KTRDR_HOST_SHUTDOWN_GRACE_S, and keeps undelivered models in the spool.\n\n"
        "example:\n  ktrdr host serve --address 0.0.0.0:50051 --data-dir data/samples \\\n"
        "      --spool-dir /var/lib/ktrdr/spool --max-sessions 2",
    )
    serve.add_argument(
        "--address", default=None, help=f"listen address HOST:PORT (default {DEFAULT_ADDRESS})"
    )
    serve.add_argument("--data-dir", type=Path, default=None, help="OHLCV files directory")
    serve.add_argument(
        "--spool-dir", type=Path, default=None, help="where models wait for delivery"
    )
    serve.add_argument(
        "--max-sessions", type=int, default=None, help="sessions that may train at once"
    )
    serve.add_argument("--device", default=None, help="default device: auto|cpu|cuda|cuda:N|mps")
    serve.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="train sessions on a Ray cluster: auto | HOST:PORT | ray://HOST:PORT "
        "(default: this machine's worker processes; needs the ray extra)",
    )
    serve.add_argument(
        "--allowed-results-target",
        action="append",
        default=None,
        metavar="HOST[:PORT]",
        help="a backend address this host may deliver to; repeat (default: loopback only)",
    )
    serve.add_argument(
        "--backend",
        default=None,
        metavar="HOST:PORT",
        help="register with this backend and heartbeat (default: $KTRDR_HOST_BACKEND_ADDRESS; "
        "none: the backend lists this host with --host-address)",
    )
    serve.add_argument(
        "--advertise-address",
        default=None,
        metavar="HOST:PORT",
        help="the address the backend should dial (default: the listen address, port resolved)",
    )
    serve.add_argument(
        "--host-id", default=None, help="stable id in the backend's registry (default: host.id)"
    )
    add_server_security_options(serve, "KTRDR_HOST_")
    add_operability_options(serve, "KTRDR_HOST_")
    serve.set_defaults(handler=_serve)

    caps = hsub.add_parser(
        "capabilities",
        help="show a host's device, versions and capacity",
        formatter_class=formatter,
        description="Ask a running host for its capabilities (TrainingHost.GetCapabilities)."
        "\n\nexample:\n  ktrdr host capabilities --address 127.0.0.1:50051 --json",
    )
    caps.add_argument(
        "--address",
        default=os.environ.get("KTRDR_HOST_ADDRESS") or DEFAULT_ADDRESS,
        help="the host's HOST:PORT (default: $KTRDR_HOST_ADDRESS, where a host here listens, "
        f"else {DEFAULT_ADDRESS})",
    )
    caps.add_argument("--json", action="store_true", help="print the answer as JSON")
    caps.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    add_tls_options(caps)
    caps.set_defaults(handler=_capabilities)
    spool_commands.register(hsub, formatter)


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from ktrdr.security.tls import SecurityConfigError
    from ktrdr.tracing import TracingConfigError
    from ktrdr_host.ray.cluster import RayUnavailable
    from ktrdr_host.server import RunningHost, serve
    from ktrdr_host.settings import HostSettings

    if args.verbose == 0:  # a server logs its lifecycle by default
        logging.getLogger().setLevel(logging.INFO)
    overrides = {
        "address": args.address,
        "data_dir": args.data_dir,
        "spool_dir": args.spool_dir,
        "max_sessions": args.max_sessions,
        "device": args.device,
        "ray_address": args.ray_address,
        "allowed_results_targets": args.allowed_results_target,
        "backend_address": args.backend,
        "advertise_address": args.advertise_address,
        "host_id": args.host_id,
        **security_overrides(args),
        **operability_overrides(args),
    }
    try:
        settings = HostSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        print(f"error: invalid host settings:\n{exc}", file=sys.stderr)
        return 2
    configure_service_logging(settings.log_format)

    running: list[RunningHost] = []

    def ready(host: RunningHost) -> None:
        running.append(host)
        line = f"ktrdr host listening on {host.address}"
        if settings.log_format == "json":  # every line this process writes is JSON
            import json
            from datetime import UTC, datetime

            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            fields = {"time": now, "level": "INFO", "logger": "ktrdr.cli", "message": line}
            line = json.dumps({**fields, "address": host.address})
        print(line, flush=True)

    from ktrdr.service.parent_watch import watch_parent_from_env

    watch_parent_from_env()
    try:
        asyncio.run(serve(settings, on_ready=ready))
    except (SecurityConfigError, TracingConfigError, RayUnavailable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if running and running[0].ray is not None and running[0].ray.abandoned:
        # Ray's exit handler would wait for the cluster that is gone: end here, all else done
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _capabilities(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf.json_format import MessageToDict

    from ktrdr.security.channels import sync_channel
    from ktrdr.training.v1 import host_pb2, host_pb2_grpc
    from ktrdr.transfer import grpc_options

    tls = tls_from_args(args)
    with sync_channel(args.address, options=grpc_options(), tls=tls) as channel:
        try:
            answer = host_pb2_grpc.TrainingHostStub(channel).GetCapabilities(
                host_pb2.GetCapabilitiesRequest(), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            from ktrdr.client.errors import service_error

            print(
                f"error: cannot ask the host at {args.address}: "
                f"{service_error(exc, args.address, tls)}",
                file=sys.stderr,
            )
            return 1
    data = MessageToDict(
        answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    gib = answer.accelerator_memory_bytes / (1 << 30)
    print(f"host            {args.address}")
    print(f"device          {host_pb2.DeviceType.Name(answer.device_type)}  {answer.device_name}")
    print(
        f"accel. memory   {gib:.1f} GiB" if answer.accelerator_memory_bytes else "accel. memory   -"
    )
    print(f"sessions        {answer.active_sessions} running of {answer.max_sessions}")
    print(f"accepting       {'yes' if answer.accepting else 'no (draining)'}")
    if answer.HasField("cluster"):
        c = answer.cluster
        state = "reachable" if c.reachable else "UNREACHABLE"
        print(
            f"ray cluster     {c.address} ({state}): {c.node_count} node(s), {c.cpus:g} CPU(s), "
            f"{c.gpus:g} GPU(s); {c.running_sessions} running, {c.queued_sessions} queued, "
            f"{c.free_slots} free slot(s)"
        )
        for n in c.nodes:
            gpu = f", {n.gpus:g} GPU {n.gpu_kind}".rstrip() if n.gpus else ""
            head = " (head)" if n.head else ""
            print(
                f"  node          {n.address}{head} {n.node_id[:12]}: {n.cpus:g} CPU{gpu}, "
                f"{n.running_sessions} session(s)"
            )
    print(
        f"versions        ktrdr {answer.ktrdr_version}, torch {answer.torch_version}, "
        f"python {answer.python_version}"
    )
    return 0
