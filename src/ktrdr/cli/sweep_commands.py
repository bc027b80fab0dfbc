"""``ktrdr sweep create|watch|show|list|cancel``: hyperparameter sweeps on the backend.

    ktrdr sweep create tiny_rsi --param model.training.learning_rate=float:1e-4:1e-1:log \\
        --param model.architecture.activation=choice:relu,tanh --trials 20 --parallel 2 \\
        --objective val_loss:min
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ktrdr.cli.client_commands import (
    _client,
    _connection_options,
    _fmt,
    _handles_errors,
    _json_option,
    _print_json,
    _table,
)
from ktrdr.cli.live_sweep import LiveTable, SweepBoard, wants_live_table
from ktrdr.cli.tables import short_labels, short_value, terminal_width
from ktrdr.client import KtrdrClientError
from ktrdr.client.sweeps import (
    PRUNERS,
    SAMPLERS,
    SWEEP_STATUSES,
    SweepInfo,
    TrialInfo,
    parse_param_assignment,
)

EXAMPLES = """\
examples:
  ktrdr sweep create tiny_rsi --param model.training.learning_rate=float:1e-4:1e-1:log \\
      --param 'model.architecture.hidden_layers[0]=int:8:64' \\
      --param model.architecture.activation=choice:relu,tanh \\
      --trials 20 --parallel 2 --objective val_loss:min --watch
  ktrdr sweep list
  ktrdr sweep show SWEEP_ID
"""


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    conn, js = _connection_options(), _json_option()
    sweep = sub.add_parser(
        "sweep",
        help="hyperparameter sweeps (Optuna) on the backend",
        description="Sweeps: an Optuna study on the backend whose trials are training "
        "operations.\n\n" + EXAMPLES,
        formatter_class=formatter,
    )
    ssub = sweep.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", required=True)
    p = ssub.add_parser(
        "create", parents=[conn, js], help="start a sweep", formatter_class=formatter
    )
    p.add_argument("strategy", help="strategy file (.yaml) or a strategy name on the backend")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        required=True,
        metavar="PATH=SPEC",
        help="a search dimension: float:LOW:HIGH[:log], int:LOW:HIGH[:STEP][:log], "
        "choice:A,B,... (repeatable, at most 32)",
    )
    p.add_argument("--trials", type=int, default=0, help="number of trials (grid: 0 = all)")
    p.add_argument("--parallel", type=int, default=1, help="trials training at once (1)")
    p.add_argument(
        "--objective",
        default="val_loss",
        metavar="METRIC[:min|max]",
        help="a validation metric, e.g. val_loss (the default), val_accuracy, "
        "val_sharpe_strategy:max; a test metric (test_*) needs --allow-test-objective",
    )
    p.add_argument(
        "--allow-test-objective",
        action="store_true",
        help="allow an objective on a test metric (test_*): the sweep and its models are "
        "marked selected-on-test, since the best trial's test numbers are then in-sample",
    )
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="tpe")
    p.add_argument("--pruner", choices=sorted(PRUNERS), default="median")
    p.add_argument("--prune-metric", default="", help="epoch metric the pruner watches")
    p.add_argument("--startup-trials", type=int, default=None, help="median pruner (5)")
    p.add_argument("--warmup-epochs", type=int, default=None, help="median pruner (0)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--mode", choices=["auto", "local", "host"], default=None)
    p.add_argument("--require-gpu", action="store_true")
    p.add_argument(
        "--set",
        dest="set_fields",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a fixed change to every trial's strategy (repeatable)",
    )
    p.add_argument("--watch", action="store_true", help="follow the sweep to its end")
    _plain_option(p)
    p.set_defaults(handler=_handles_errors(_create))
    for name, fn, text in (
        ("watch", _watch, "follow a sweep's trials to its end"),
        ("show", _show, "a sweep and its trials"),
        ("cancel", _cancel, "cancel a sweep (finished trials are kept)"),
    ):
        p = ssub.add_parser(name, parents=[conn, js], help=text)
        p.add_argument("sweep_id")
        if name == "cancel":
            p.add_argument("--reason", default="")
        if name == "watch":
            _plain_option(p)
        p.set_defaults(handler=_handles_errors(fn))
    p = ssub.add_parser("list", parents=[conn, js], help="sweeps, newest first")
    p.add_argument("--status", choices=SWEEP_STATUSES, default=None)
    p.add_argument("--owner", default="", help="only this token name's ('me': yours)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    p.set_defaults(handler=_handles_errors(_list))


_IN_SAMPLE = (
    "warning: selected on the test metric {objective}: the best trial's test numbers are "
    "in-sample, not an estimate of how it does on new data (the sweep and its models are "
    "marked selected-on-test)"
)


def _plain_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plain",
        action="store_true",
        help="one line per event, even on a terminal (the default there: a live table)",
    )


def _create(args: argparse.Namespace) -> int:
    client = _client(args)
    sweep = client.create_sweep(
        args.strategy,
        [parse_param_assignment(text) for text in args.param],
        trials=args.trials,
        parallel=args.parallel,
        objective=args.objective,
        sampler=args.sampler,
        pruner=args.pruner,
        seed=args.seed,
        mode=args.mode,
        require_gpu=args.require_gpu,
        set_fields=args.set_fields,
        prune_metric=args.prune_metric,
        startup_trials=args.startup_trials,
        warmup_epochs=args.warmup_epochs,
        allow_test_objective=args.allow_test_objective,
    )
    if sweep.selected_on_test:
        print(_IN_SAMPLE.format(objective=sweep.objective), file=sys.stderr)
    _explain_parallelism(client, sweep, args.mode)
    if not args.watch:
        if args.json:
            _print_json(_sweep_dict(sweep))
        else:
            print(
                f"sweep {sweep.sweep_id}: {sweep.n_trials} trials of {sweep.strategy}, "
                f"{sweep.parallelism} at once, {sweep.direction} {sweep.objective}"
            )
            print(f"follow it with: ktrdr sweep watch {sweep.sweep_id}")
        return 0
    args.sweep_id = sweep.sweep_id
    return _watch(args)


def _explain_parallelism(client: Any, sweep: SweepInfo, mode: str | None) -> None:
    """A notice when the backend will train fewer trials at once than ``--parallel`` asks:
    local trials wait for its KTRDR_BACKEND_LOCAL_CONCURRENCY slots."""
    if sweep.parallelism <= 1 or mode == "host":
        return
    try:
        config = client.config()
    except KtrdrClientError:
        return  # a viewer may not read it; the sweep runs all the same
    slots = config.local_concurrency
    if mode is None and not config.host_addresses:
        mode = "local"
    if slots < sweep.parallelism and (mode == "local" or not config.host_addresses):
        print(
            f"note: --parallel {sweep.parallelism}, but the backend trains at most {slots} "
            f"local trial{'s' if slots != 1 else ''} at once (KTRDR_BACKEND_LOCAL_CONCURRENCY="
            f"{slots}): the others wait; raise it on the backend or use --mode host",
            file=sys.stderr,
        )


def _watch(args: argparse.Namespace) -> int:
    client = _client(args)
    if not args.json and wants_live_table(sys.stdout, plain=args.plain):
        table = LiveTable(SweepBoard(args.sweep_id), sys.stdout)
        sweep = client.watch_sweep(args.sweep_id, on_event=table)
        print()
        _print_sweep(sweep, as_json=False)
        return 0 if sweep.status == "completed" else 1

    def emit(e: Any) -> None:
        if args.json or not (e.message or e.epoch):
            return
        trial = TrialInfo.from_proto(e.trial) if e.HasField("trial") else None
        line = e.message
        if trial is not None and e.epoch:
            metrics = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(e.metrics.items()))
            line = f"trial {trial.number} epoch {e.epoch}: {metrics}"
        elif trial is not None and trial.value is not None:
            line += f" ({short_value(trial.value)})"
        print(line, flush=True)

    sweep = client.watch_sweep(args.sweep_id, on_event=emit)
    _print_sweep(sweep, as_json=args.json)
    return 0 if sweep.status == "completed" else 1


def _show(args: argparse.Namespace) -> int:
    _print_sweep(_client(args).get_sweep(args.sweep_id), as_json=args.json)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    """0 once the sweep is cancelled (or still stopping its trials); 1 when it ended
    otherwise (the backend's refusal of a finished sweep is an error line and 1 too)."""
    sweep = _client(args).cancel_sweep(args.sweep_id, reason=args.reason)
    _print_sweep(sweep, as_json=args.json)
    if sweep.status == "running":
        print(
            f"note: sweep {sweep.sweep_id} is still stopping its trials "
            f"(ktrdr sweep show {sweep.sweep_id})",
            file=sys.stderr,
        )
    elif sweep.status != "cancelled":
        print(f"error: sweep {sweep.sweep_id} ended {sweep.status}, not cancelled", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    sweeps = _client(args).sweeps(status=args.status, owner=args.owner, limit=args.limit)
    if args.json:
        _print_json([_sweep_dict(s) for s in sweeps])
        return 0
    if not sweeps:
        print("no sweeps")
        return 0
    _table(
        ["SWEEP", "STATUS", "STRATEGY", "TRIALS", "OBJECTIVE", "BEST"],
        [
            [
                s.sweep_id,
                s.status,
                s.strategy,
                f"{sum(s.trial_counts.get(k, 0) for k in ('completed', 'pruned', 'failed'))}"
                f"/{s.n_trials}",
                f"{s.objective}:{s.direction[:3]}"
                + (" (selected on test)" if s.selected_on_test else ""),
                f"{short_value(s.best.value)} (#{s.best.number})"
                if s.best and s.best.value is not None
                else "-",
            ]
            for s in sweeps
        ],
    )
    return 0


def _sweep_dict(sweep: SweepInfo) -> dict[str, Any]:
    out = {k: v for k, v in sweep.__dict__.items() if k != "proto"}
    out["best"] = sweep.best.row() if sweep.best else None
    dsr = sweep.deflated_sharpe
    out["deflated_sharpe"] = dict(dsr.__dict__) if dsr is not None else None
    pbo = sweep.backtest_overfitting
    out["backtest_overfitting"] = dict(pbo.__dict__) if pbo is not None else None
    out["trials"] = [t.row() for t in sweep.trials]
    return out


def _print_sweep(sweep: SweepInfo, *, as_json: bool) -> None:
    if as_json:
        _print_json(_sweep_dict(sweep))
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(sweep.trial_counts.items())) or "none"
    print(f"sweep {sweep.sweep_id}: {sweep.status} ({sweep.strategy}; trials: {counts})")
    print(
        f"objective {sweep.direction} {sweep.objective}; sampler {sweep.sampler}, "
        f"pruner {sweep.pruner}, seed {sweep.seed}"
    )
    if sweep.selected_on_test:
        print(_IN_SAMPLE.format(objective=sweep.objective))
    if sweep.error:
        print(f"error: {sweep.error}")
    if sweep.deflated_sharpe is not None:
        print(sweep.deflated_sharpe.description)
    if sweep.backtest_overfitting is not None:
        print(sweep.backtest_overfitting.description)
    if sweep.best is not None and sweep.best.value is not None:
        best = sweep.best.params
        labels = short_labels(list(best))
        params = ", ".join(
            f"{k}={short_value(v)}" for k, v in zip(labels, best.values(), strict=True)
        )
        print(f"best: trial {sweep.best.number} = {short_value(sweep.best.value)}  {params}")
    if not sweep.trials:
        return
    paths = sorted({p for t in sweep.trials for p in t.params})
    _table(
        ["#", "STATUS", "VALUE", "EPOCH", *short_labels(paths), "OPERATION"],
        [
            [
                t.number,
                t.status + (f"@{t.pruned_at_epoch}" if t.pruned_at_epoch else ""),
                short_value(t.value) if t.value is not None else "-",
                t.last_epoch,
                *(short_value(t.params.get(p, "")) for p in paths),
                t.operation_id or "-",
            ]
            for t in sweep.trials
        ],
        width=terminal_width(),
    )
