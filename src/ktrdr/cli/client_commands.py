"""Commands that talk to the backend: train (without --local), ops, models, strategies, config.
(``ktrdr host capabilities`` lives with the host's commands.)

The backend address comes from ``--backend`` or ``$KTRDR_BACKEND_ADDRESS`` (default
127.0.0.1:50052). Every failure is one ``error: ...`` line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ktrdr import tracing
from ktrdr.cli.summary import (
    comparison_summary,
    number,
    run_summary,
    trading_summary,
    walk_forward_summary,
)
from ktrdr.client import (
    BACKEND_ADDRESS_ENV,
    DEFAULT_BACKEND_ADDRESS,
    KtrdrClientError,
    OperationInfo,
    TrainingClient,
    TrainingResult,
)
from ktrdr.client.records import MODES, STATUSES
from ktrdr.security.tls import ClientTLS

Handler = Callable[[argparse.Namespace], int]
log = logging.getLogger(__name__)


# -- shared plumbing -----------------------------------------------------------------------------
def _fail(message: str, code: int = 1) -> int:
    one_line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"error: {one_line}", file=sys.stderr)
    return code


def _handles_errors(handler: Handler) -> Handler:
    """Turns client, value and file errors into one line on stderr and exit code 1."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except KtrdrClientError as exc:
            return _fail(str(exc))
        except BrokenPipeError:
            raise  # ktrdr.cli.main exits quietly
        except (ValueError, OSError) as exc:
            return _fail(str(exc))

    return wrapper


def _client(args: argparse.Namespace) -> TrainingClient:
    return TrainingClient(
        args.backend, timeout_s=args.timeout, token=args.token, tls=tls_from_args(args)
    )


def tls_from_args(args: argparse.Namespace) -> ClientTLS:
    """The client TLS of ``add_tls_options``' options (and $KTRDR_TLS_* for the rest)."""
    from ktrdr.client.connection import client_tls

    return client_tls(
        ca=args.tls_ca,
        cert=args.tls_cert,
        key=args.tls_key,
        enabled=args.tls,
        server_name=args.tls_server_name,
    )


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--backend",
        metavar="ADDR",
        default=os.environ.get(BACKEND_ADDRESS_ENV) or DEFAULT_BACKEND_ADDRESS,
        help=f"backend address (default: ${BACKEND_ADDRESS_ENV} or {DEFAULT_BACKEND_ADDRESS})",
    )
    parent.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="deadline of each call (10 s)"
    )
    add_tls_options(parent)
    parent.add_argument(
        "--token",
        default=None,
        help="bearer token (default: $KTRDR_TOKEN, $KTRDR_TOKEN_FILE, or for a backend on "
        "this machine the admin token in .ktrdr/backend/admin.token)",
    )
    return parent


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """Client TLS options (defaults from $KTRDR_TLS_*)."""
    parser.add_argument("--tls", action="store_true", help="use TLS with the system's roots")
    parser.add_argument("--tls-ca", default=None, help="CA of the server's certificate (PEM)")
    parser.add_argument("--tls-cert", default=None, help="client certificate for mTLS (PEM)")
    parser.add_argument("--tls-key", default=None, help="client certificate's key (PEM)")
    parser.add_argument(
        "--tls-server-name", default=None, help="name to check in the server's certificate"
    )


def _json_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parent


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> None:
    """Columns padded to their widest cell; with ``width``, cut to fit it (``tables.fit``)."""
    from ktrdr.cli.tables import fit

    for line in fit(headers, rows, width):
        print(line)


def _when(op: OperationInfo) -> str:
    return op.created.strftime("%Y-%m-%d %H:%M:%S") if op.created else "-"


_fmt = number  # the other command modules import it from here


def _cell(value: Any) -> str:
    return number(value) if isinstance(value, int | float) else "-"


def _class_column_order(column: str) -> tuple[int, str]:
    known = ("precision", "recall", "f1", "f1_score", "support")
    return (known.index(column) if column in known else len(known), column)


# -- registration --------------------------------------------------------------------------------
def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    conn, js = _connection_options(), _json_option()
    _register_train(sub, formatter, conn)

    ops = sub.add_parser(
        "ops",
        help="training operations on the backend",
        formatter_class=formatter,
        description="List, show, watch and cancel training operations.\n\nexamples:\n"
        "  ktrdr ops list --status running\n  ktrdr ops watch OPERATION_ID",
    )
    osub = ops.add_subparsers(dest="ops_command", metavar="COMMAND", required=True)
    p = osub.add_parser(
        "list",
        parents=[conn, js],
        help="list operations, newest first",
        formatter_class=formatter,
        description="List operations, newest first.\n\nexample:\n"
        "  ktrdr ops list --status completed --strategy rsi_single --limit 5",
    )
    p.add_argument("--status", choices=list(STATUSES), default=None, help="only this status")
    p.add_argument("--strategy", default=None, help="only this strategy")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--owner", default=None, help="only those created by this token name")
    p.add_argument(
        "--mine", action="store_const", const="me", dest="owner", help="only your own operations"
    )
    p.set_defaults(handler=_handles_errors(_ops_list))
    for name, text, fn in (
        ("show", "one operation in detail", _ops_show),
        ("watch", "follow an operation's progress to its end", _ops_watch),
        ("cancel", "cancel a pending or running operation", _ops_cancel),
    ):
        p = osub.add_parser(
            name,
            parents=[conn, js],
            help=text,
            formatter_class=formatter,
            description=f"{text[0].upper()}{text[1:]}.\n\nexample:\n  ktrdr ops {name} "
            "OPERATION_ID",
        )
        p.add_argument("operation_id", help="the operation's id (see: ktrdr ops list)")
        if name == "cancel":
            p.add_argument("--reason", default="cancelled from the command line")
        p.set_defaults(handler=_handles_errors(fn))

    strategies = sub.add_parser(
        "strategies",
        help="strategies known to the backend",
        formatter_class=formatter,
        description="Strategies known to the backend.\n\nexample:\n  ktrdr strategies list",
    )
    ssub = strategies.add_subparsers(dest="strategies_command", metavar="COMMAND", required=True)
    p = ssub.add_parser(
        "list",
        parents=[conn, js],
        help="strategies with their training status and latest version",
        formatter_class=formatter,
        description="Strategies with status (untrained, training, trained, failed) and their\n"
        "latest model version.\n\nexample:\n  ktrdr strategies list --json",
    )
    p.set_defaults(handler=_handles_errors(_strategies_list))

    config = sub.add_parser(
        "config",
        help="the backend's training configuration",
        formatter_class=formatter,
        description="Show the backend's training configuration or change the default mode.\n\n"
        "examples:\n  ktrdr config show\n  ktrdr config set-default-mode host",
    )
    csub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    p = csub.add_parser(
        "show",
        parents=[conn, js],
        help="default mode, hosts, limits",
        formatter_class=formatter,
        description="Show the training configuration.\n\nexample:\n  ktrdr config show",
    )
    p.set_defaults(handler=_handles_errors(_config_show))
    p = csub.add_parser(
        "set-default-mode",
        parents=[conn, js],
        help="change the default execution mode (until the backend restarts)",
        formatter_class=formatter,
        description="Change the default execution mode of later requests until the backend\n"
        "restarts (TRAINING_DEFAULT_MODE sets it at start).\n\nexample:\n"
        "  ktrdr config set-default-mode local",
    )
    p.add_argument("mode", choices=list(MODES))
    p.set_defaults(handler=_handles_errors(_config_set_default_mode))


def _register_train(
    sub: Any, formatter: type[argparse.HelpFormatter], conn: argparse.ArgumentParser
) -> None:
    """Adds the backend options to the ``train`` command that ``local_commands`` defines."""
    train: argparse.ArgumentParser | None = sub.choices.get("train")
    if train is None:
        return
    train.description = (
        "Train a strategy through the backend (default) or in this process (--local).\n\n"
        "STRATEGY is a YAML file (sent as text) or the name of a strategy in the backend's\n"
        "strategies directory. Ctrl-C cancels the operation on the backend and waits for\n"
        "the state it reaches.\n\nexamples:\n"
        "  ktrdr train examples/strategies/rsi_single.yaml --mode host --seed 7\n"
        "  ktrdr train rsi_single --detach --json\n"
        "  ktrdr train examples/strategies/rsi_single.yaml --local"
    )
    group = train.add_argument_group("backend options (without --local)")
    for action in conn._actions:
        if action.option_strings:
            group._add_action(action)
    group.add_argument("--mode", choices=list(MODES), default=None, help="default: backend's")
    group.add_argument("--require-gpu", action="store_true", help="fail unless a GPU host runs it")
    group.add_argument(
        "--detach", action="store_true", help="print the operation id and return at once"
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument(
        "--tag",
        action="append",
        default=None,
        dest="tags",
        metavar="TAG",
        help="tag the stored model (repeatable; 'ktrdr models tag' changes them later)",
    )
    train.set_defaults(remote_handler=_handles_errors(_train_remote))


# -- train ---------------------------------------------------------------------------------------
def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _result_json(result: TrainingResult) -> dict[str, Any]:
    return {
        **result.operation.to_dict(),
        "device": result.device,
        "duration_s": result.duration_s,
    }


def placement_line(op: OperationInfo) -> str:
    """One line saying where an operation runs (or waits), for stderr when it is created."""
    head = f"operation {op.operation_id}: {op.status}, mode {op.mode}"
    if op.fallback:
        return f"warning: {head}: runs LOCALLY in the backend, not on a host ({op.mode_reason})"
    if op.queue_position:
        return (
            f"{head}, queued for a host slot, position {op.queue_position}: {op.queue_reason} "
            f"({op.mode_reason})"
        )
    if op.mode == "host":
        return f"{head} on host {op.host_address} ({op.mode_reason})"
    return f"{head} ({op.mode_reason})"


def _print_result(result: TrainingResult) -> None:
    op = result.operation
    if not result.ok:
        print(f"\noperation {op.operation_id} {op.status}: {op.error or 'no reason given'}")
        if op.fallback:
            print(f"  it ran LOCALLY (fallback from host mode): {op.mode_reason}")
        return
    where = f"on host {op.host_address}" if op.mode == "host" and op.host_address else op.mode
    if op.fallback:
        where = "LOCALLY in the backend (fallback from host mode)"
    elif op.mode == "local":
        where = "locally in the backend"
    print(
        run_summary(
            op.strategy,
            device=result.device,
            where=where,
            duration_s=result.duration_s,
            metadata=result.metadata(),
            placement=f"{'warning' if op.fallback else 'placed'}: {op.mode_reason}",
            metrics=result.metrics,
        )
    )
    if result.model:
        print(f"model saved: {result.model.path} (version {result.model.version})")


def _train_remote(args: argparse.Namespace) -> int:
    if args.data_dir or args.models_dir:
        return _fail("--data-dir and --models-dir apply to --local only", 2)
    from ktrdr.client.interrupt import CtrlC

    # Ctrl-C from here on sets a flag (and cancels the stream being watched) instead of
    # raising wherever the main thread is; it works even if SIGINT was inherited ignored.
    with CtrlC() as ctrl_c, contextlib.ExitStack() as traced:
        client = _client(args)
        # With tracing on (OTEL_* variables), this command is the root of the trace.
        traced.enter_context(tracing.span("train", {"ktrdr.backend": client.address}))
        log.info("asking %s to create a training operation", client.address)
        if ctrl_c.interrupted:
            print("\ninterrupted: no operation was created", file=sys.stderr)
            return 130
        op = client.create_training(
            args.strategy,
            symbols=_split(args.symbols),
            timeframes=_split(args.timeframes),
            start=args.start,
            end=args.end,
            mode=args.mode,
            require_gpu=args.require_gpu,
            seed=args.seed,
            device=args.device,
            tags=args.tags,
            set_fields=args.set_fields,
        )
        print(placement_line(op), file=sys.stderr)
        if ctrl_c.interrupted:  # during CreateTraining: the operation exists, cancel it
            return _cancel_after_interrupt(client, op.operation_id)
        if args.detach:
            if args.json:
                _print_json(op.to_dict())
            else:
                print(op.operation_id)
            return 0
        try:
            result = client.watch(
                op.operation_id,
                progress=not (args.json or args.no_progress),
                interrupt=ctrl_c,
            )
        except KeyboardInterrupt:
            return _cancel_after_interrupt(client, op.operation_id)
        if ctrl_c.interrupted:  # came as the operation ended: still report the interrupt
            return _cancel_after_interrupt(client, op.operation_id)
    if args.json:
        _print_json(_result_json(result))
    else:
        _print_result(result)
    return 0 if result.ok else 1


def _cancel_after_interrupt(client: TrainingClient, operation_id: str) -> int:
    """Cancel on the backend, wait for the state reached (confirmed by GetOperation): 130."""
    print(
        f"\ninterrupted: cancelling operation {operation_id} ... (Ctrl-C again: stop waiting)",
        file=sys.stderr,
    )
    try:
        try:
            reached = client.cancel(operation_id, reason="interrupted (Ctrl-C) in ktrdr train")
        except KtrdrClientError as exc:  # still wait for the state the operation reaches
            print(f"warning: cancel request: {exc}", file=sys.stderr)
            reached = client.operation(operation_id)
        if not reached.is_finished:
            reached = client.watch(operation_id, progress=False, timeout_s=60).operation
        print(f"operation {operation_id}: {reached.status}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"not waiting; see: ktrdr ops show {operation_id}", file=sys.stderr)
    except KtrdrClientError as exc:
        print(f"error: {exc}; see: ktrdr ops show {operation_id}", file=sys.stderr)
    return 130


# -- ops -----------------------------------------------------------------------------------------
def _ops_list(args: argparse.Namespace) -> int:
    ops = _client(args).operations(
        status=args.status, strategy=args.strategy, limit=args.limit, owner=args.owner
    )
    if args.json:
        _print_json([op.to_dict() for op in ops])
        return 0
    if not ops:
        print("no operations")
        return 0
    _table(
        ["OPERATION", "STATUS", "STRATEGY", "MODE", "DONE", "CREATED", "TEST_ACC", "SWEEP"],
        [
            [
                op.operation_id,
                op.status,
                op.strategy,
                op.mode
                + (" (queued)" if op.queue_position else "")
                + (" (fallback)" if op.fallback else ""),
                f"{op.percent:.0f}%",
                _when(op),
                _fmt(op.metrics["test_accuracy"]) if "test_accuracy" in op.metrics else "-",
                f"{op.sweep_id[:8]}#{op.trial_number}" if op.sweep_id else "-",
            ]
            for op in ops
        ],
    )
    return 0


def _print_operation(op: OperationInfo) -> None:
    rows: list[tuple[str, Any]] = [
        ("operation", op.operation_id),
        ("status", op.status),
        ("strategy", op.strategy),
        ("mode", f"{op.mode} (requested: {op.requested_mode})"),
        ("placement", op.placement),
        ("reason", op.mode_reason),
        ("host", op.host_address or ("- (waiting for a slot)" if op.queue_position else "-")),
        ("require gpu", op.require_gpu),
        ("created", op.created or "-"),
        ("started", op.started or "-"),
        ("finished", op.finished or "-"),
        ("progress", f"{op.percent:.0f}% {op.last_message}"),
    ]
    if op.queue_position:
        rows.insert(2, ("queue", f"position {op.queue_position}: {op.queue_reason}"))
    if op.error:
        rows.append(("error", op.error))
    if op.model:
        rows.append(("model", f"{op.model.path} (version {op.model.version})"))
    for key, value in rows:
        print(f"{key:<12} {value}")
    for name in sorted(op.metrics):
        print(f"  {name:<22} {_fmt(op.metrics[name])}")


def _ops_show(args: argparse.Namespace) -> int:
    op = _client(args).operation(args.operation_id)
    if args.json:
        _print_json(op.to_dict())
    else:
        _print_operation(op)
    return 0


def _ops_watch(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    client = _client(args)
    if args.json:

        def emit(event: Any) -> None:
            print(json.dumps(MessageToDict(event)), flush=True)

        result = client.watch(args.operation_id, progress=False, on_event=emit)
        return 0 if result.ok else 1
    result = client.watch(args.operation_id)
    _print_result(result)
    return 0 if result.ok else 1


def _ops_cancel(args: argparse.Namespace) -> int:
    op = _client(args).cancel(args.operation_id, reason=args.reason)
    if args.json:
        _print_json(op.to_dict())
    else:
        print(f"operation {op.operation_id}: {op.status}")
    return 0


# -- models (the commands: ktrdr.cli.model_commands) ---------------------------------------------
def print_model_metadata(
    args: argparse.Namespace, path: Path, metadata: dict[str, Any], details: Any | None
) -> int:
    """``models show``'s output for a model's metadata (``details``: the backend's
    ``ModelDetails`` when the model came from the backend)."""
    info = details.info if details is not None else None
    if args.plot:
        from ktrdr.client.errors import require_module

        require_module("matplotlib", "models show --plot")
        from ktrdr.plots import save_training_plot

        save_training_plot(metadata, args.plot)
    test = metadata.get("metrics", {}).get("test", {})
    history = metadata.get("history", [])
    trading = metadata.get("metrics", {}).get("trading", {})
    coverage_warnings = metadata.get("fuzzy_coverage", {}).get("warnings", [])
    if args.json:
        _print_json(
            {
                "path": str(path),
                "strategy": metadata.get("strategy_name"),
                "version": info.version if info else None,
                "aliases": info.aliases if info else [],
                "tags": info.tags if info else [],
                "operation_id": info.operation_id if info else None,
                "mode": info.mode if info else None,
                "host": info.host if info else None,
                "sha256": info.sha256 if info else None,
                "symbols": metadata.get("symbols"),
                "timeframes": metadata.get("timeframes"),
                "created_at": metadata.get("created_at"),
                "device": metadata.get("device"),
                "seed": metadata.get("seed"),
                "test": {k: v for k, v in test.items() if k != "per_symbol"},
                "trading": {k: v for k, v in trading.items() if k != "equity_curve"},
                "walk_forward": metadata.get("metrics", {}).get("walk_forward"),
                "coverage_warnings": coverage_warnings,
                "history": history,
                "plot": str(args.plot) if args.plot else None,
            }
        )
        return 0
    device = metadata.get("device")
    if isinstance(device, dict):
        device = device.get("name") or device.get("type")
    if info is not None:
        print(f"model       {info.name}   sha256 {info.sha256[:12]}   (cached at {path})")
        print(
            f"lineage     operation {info.operation_id or '-'}   "
            f"mode {f'host {info.host}' if info.host else info.mode or '-'}   "
            f"owner {info.owner or '-'}"
        )
        print(f"aliases     {', '.join(info.aliases) or '-'}   tags {', '.join(info.tags) or '-'}")
    else:
        print(f"model       {path}")
    print(f"strategy    {metadata.get('strategy_name')}")
    print(
        f"data        {','.join(metadata.get('symbols', []))} / "
        f"{','.join(metadata.get('timeframes', []))}"
    )
    print(
        f"created     {metadata.get('created_at')}   device {device}   seed {metadata.get('seed')}"
    )
    print(f"epochs      {len(history)}")
    leading = comparison_summary(metadata.get("metrics", {}))
    for line in leading:
        print(line.removeprefix("  "))
    if test:
        print(
            f"test        accuracy {test.get('accuracy', 0):.4f}   loss {test.get('loss', 0):.4f}"
            f"   rows {test.get('rows', '-')}"
        )
        per_class = test.get("per_class", {})
        if per_class:  # plain text: models show needs no pandas or numpy
            keys = {k for row in per_class.values() for k in row}
            columns = sorted(keys, key=_class_column_order)
            _table(
                ["class", *columns],
                [[name, *(_cell(row.get(c)) for c in columns)] for name, row in per_class.items()],
            )
    if trading and not leading:
        print(trading_summary(trading))
    for line in walk_forward_summary(metadata.get("metrics", {})):
        print(line.removeprefix("  "))
    for warning in coverage_warnings:
        print(f"coverage warning: {warning}")
    if args.plot:
        print(f"plot written: {args.plot}")
    return 0


# -- strategies, config --------------------------------------------------------------------
def _strategies_list(args: argparse.Namespace) -> int:
    strategies = _client(args).strategies()
    if args.json:
        _print_json([s.to_dict() for s in strategies])
        return 0
    if not strategies:
        print("no strategies")
        return 0
    _table(
        ["STRATEGY", "STATUS", "LATEST", "LAST_OPERATION"],
        [
            [s.name, s.status, s.latest_version or "-", s.last_operation_id or "-"]
            for s in strategies
        ],
    )
    return 0


def _config_dict(config: Any) -> dict[str, Any]:
    from ktrdr.client.records import mode_name

    return {
        "default_mode": mode_name(config.default_mode),
        "host_addresses": list(config.host_addresses),
        "results_address": config.results_address,
        "health_check_timeout_s": config.health_check_timeout_s,
        "local_concurrency": config.local_concurrency,
        "max_bundle_bytes": config.max_bundle_bytes,
        "max_pending": config.max_pending,
        "max_host_queue": config.max_host_queue,
    }


def _config_show(args: argparse.Namespace) -> int:
    values = _config_dict(_client(args).config())
    if args.json:
        _print_json(values)
        return 0
    for key, value in values.items():
        shown = ", ".join(value) or "-" if isinstance(value, list) else value
        print(f"{key:<24} {shown}")
    return 0


def _config_set_default_mode(args: argparse.Namespace) -> int:
    previous, new = _client(args).set_default_mode(args.mode)
    if args.json:
        _print_json({"previous_default_mode": previous, "default_mode": new})
    else:
        print(f"default mode: {previous} -> {new} (until the backend restarts)")
    return 0
