"""Commands that need no service: validate a strategy, train in-process, predict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ktrdr.training.progress import ProgressEvent, ProgressKind


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    strategy = sub.add_parser(
        "strategy",
        help="work with strategy files",
        formatter_class=formatter,
        description="Work with strategy files.\n\nexample:\n  ktrdr strategy validate "
        "examples/strategies/rsi_single.yaml",
    )
    ssub = strategy.add_subparsers(dest="strategy_command", metavar="COMMAND", required=True)
    validate = ssub.add_parser(
        "validate",
        help="check a strategy YAML and summarise it",
        formatter_class=formatter,
        description="Check a strategy YAML; prints 'valid' and a summary, or every error. "
        "With --data-dir it also reports, per fuzzy set, the share of the data's bars where "
        "the set is active, and warns about sets that almost never are.\n\n"
        "example:\n  ktrdr strategy validate examples/strategies/rsi_single.yaml "
        "--data-dir data/samples",
    )
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--data-dir", type=Path, default=None, help="check fuzzy set coverage on this OHLCV data"
    )
    validate.set_defaults(handler=_validate)

    train = sub.add_parser(
        "train",
        help="train a strategy through the backend (--local: in this process)",
        formatter_class=formatter,
        description="Train a strategy. With --local the training library runs in this process "
        "and saves the model under --models-dir.\n\nexample:\n  ktrdr train "
        "examples/strategies/rsi_single.yaml --local --seed 7",
    )
    train.add_argument("strategy", help="strategy YAML file (or, without --local, a name)")
    train.add_argument("--local", action="store_true", help="run in-process, no services")
    train.add_argument("--data-dir", type=Path, default=None, help="OHLCV files directory")
    train.add_argument("--models-dir", type=Path, default=None, help="where models are saved")
    train.add_argument("--symbols", default=None, help="comma-separated symbols override")
    train.add_argument(
        "--timeframes", default=None, help="comma-separated timeframes override (first = base)"
    )
    train.add_argument("--start", default=None, help="start date YYYY-MM-DD (inclusive)")
    train.add_argument("--end", default=None, help="end date YYYY-MM-DD (inclusive)")
    train.add_argument("--seed", type=int, default=None, help="random seed override")
    train.add_argument(
        "--set",
        dest="set_fields",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change any strategy field by its path, value as YAML (repeatable), e.g. "
        "--set model.training.learning_rate=0.01 --set 'model.architecture.hidden_layers=[64, 32]'",
    )
    train.add_argument("--device", default=None, help="auto|cpu|cuda|mps (default: KTRDR_DEVICE)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(handler=_train)

    from ktrdr.cli.client_commands import _connection_options

    predict = sub.add_parser(
        "predict",
        help="BUY/HOLD/SELL signals from a saved model",
        parents=[_connection_options()],
        formatter_class=formatter,
        description="Score OHLCV bars with a saved model: a model directory, or a model the\n"
        "backend stores (STRATEGY, STRATEGY:VERSION or STRATEGY@ALIAS), downloaded and\n"
        "cached by SHA-256.\n\nexamples:\n  ktrdr predict "
        "models/rsi_single/EURUSD_1h_v1 --data data/samples/EURUSD_1h.csv --out signals.csv\n"
        "  ktrdr predict rsi_single@production --data data/samples/EURUSD_1h.csv",
    )
    predict.add_argument("model_dir", help="a model directory or STRATEGY[:VERSION|@ALIAS]")
    predict.add_argument("--data", type=Path, required=True, help="OHLCV file (base timeframe)")
    predict.add_argument(
        "--symbol",
        default=None,
        help="symbol of the data (default: from the file name SYMBOL_TF.csv)",
    )
    predict.add_argument("--out", type=Path, default=None, help="write signals as CSV here")
    predict.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="warn instead of refusing data of a symbol or timeframe the model was not trained on",
    )
    predict.add_argument(
        "--date-format", default=None, help="day_first, month_first or a strftime pattern"
    )
    predict.set_defaults(handler=_predict)


def _validate(args: argparse.Namespace) -> int:
    from ktrdr.config.cli import validate_command

    return validate_command(args.file, args.data_dir)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class _ConsoleProgress:
    """Steps as lines, epochs as a tqdm bar on a terminal (one plain line each otherwise, so a
    redirected log holds no redrawn bars)."""

    def __init__(self) -> None:
        self._bar: Any = None
        isatty = getattr(sys.stderr, "isatty", None)
        self._terminal = bool(isatty and isatty())

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm.auto import tqdm

        if event.kind is ProgressKind.STEP_STARTED:
            self.close()
            print(f"[{event.percent:5.1f}%] {event.message}", file=sys.stderr, flush=True)
        elif event.kind is ProgressKind.EPOCH and not self._terminal:
            line = "  ".join(
                f"{k} {v:.4f}" for k, v in event.metrics.items() if k != "learning_rate"
            )
            print(f"epoch {event.epoch}/{event.total_epochs}  {line}", file=sys.stderr)
        elif event.kind is ProgressKind.EPOCH:
            if self._bar is None:
                self._bar = tqdm(
                    total=event.total_epochs, desc="epochs", unit="epoch", file=sys.stderr
                )
            self._bar.n = event.epoch
            shown = {k: round(v, 4) for k, v in event.metrics.items() if k != "learning_rate"}
            self._bar.set_postfix(shown, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _train(args: argparse.Namespace) -> int:
    if not args.local:
        handler = getattr(args, "remote_handler", None)
        if handler is None:
            print("error: only --local training is available in this build", file=sys.stderr)
            return 2
        code: int = handler(args)
        return code
    remote_only = [
        flag
        for flag, value in (
            ("--mode", getattr(args, "mode", None)),
            ("--require-gpu", getattr(args, "require_gpu", False)),
            ("--detach", getattr(args, "detach", False)),
        )
        if value
    ]
    if remote_only:
        print(
            f"error: {', '.join(remote_only)} apply to backend training, not --local",
            file=sys.stderr,
        )
        return 2
    from ktrdr.config import apply_overrides, load_strategy
    from ktrdr.config.field_overrides import parse_assignment
    from ktrdr.config.settings import LibrarySettings
    from ktrdr.storage import ModelStorage

    settings = LibrarySettings()
    path = Path(args.strategy)
    try:
        fields = [parse_assignment(text) for text in args.set_fields]
    except ValueError as exc:
        print(f"error: --set {exc}", file=sys.stderr)
        return 2
    config = apply_overrides(
        load_strategy(path, field_overrides=fields),
        symbols=_split(args.symbols),
        timeframes=_split(args.timeframes),
        start_date=args.start,
        end_date=args.end,
        seed=args.seed,
    )
    from ktrdr.training.executor import TrainingExecutor  # torch: only once the strategy is good

    executor = TrainingExecutor(
        args.data_dir or settings.data_dir, device=args.device or settings.device
    )
    from ktrdr.client.interrupt import CtrlC
    from ktrdr.errors import TrainingCancelled
    from ktrdr.training.cancellation import CancellationToken

    progress = _ConsoleProgress()
    token = CancellationToken()
    try:
        # Ctrl-C cancels the run through its token (checked between steps and batches).
        with CtrlC() as ctrl_c:
            ctrl_c.on_interrupt(lambda: token.cancel("interrupted (Ctrl-C)"))
            result = executor.run(config, progress, token, strategy_yaml=path.read_text())
    except TrainingCancelled:
        progress.close()
        print("\ninterrupted: training cancelled, no model saved", file=sys.stderr)
        return 130
    finally:
        progress.close()
    stored = ModelStorage(args.models_dir or settings.models_dir).save(result.bundle)
    if args.json:
        print(
            json.dumps(
                {
                    "model_path": str(stored.path),
                    "version": stored.version,
                    "strategy": stored.strategy,
                    "device": result.device,
                    "duration_s": result.duration_s,
                    "metrics": result.summary,
                },
                indent=2,
            )
        )
        return 0
    from ktrdr.cli.summary import run_summary

    print(
        run_summary(
            config.name,
            device=result.device,
            where="in this process",
            duration_s=result.duration_s,
            metadata=result.bundle.metadata,
        )
    )
    print(f"model saved: {stored.path} (version {stored.version})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ktrdr.data import read_ohlcv_file
    from ktrdr.training.predictor import Predictor

    if Path(args.model_dir).is_dir():
        predictor = Predictor.load(Path(args.model_dir))
    else:
        from ktrdr.cli.client_commands import _client
        from ktrdr.client import KtrdrClientError, parse_model_ref

        try:
            parse_model_ref(args.model_dir)
            with _client(args) as client:
                predictor = Predictor.load(args.model_dir, client=client)
        except KtrdrClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    symbol = args.symbol or args.data.stem.split("_")[0]
    bars = read_ohlcv_file(args.data, getattr(args, "date_format", None))
    for line in predictor.check_data(symbol, bars, allow_mismatch=args.allow_mismatch):
        print(f"warning: {line}", file=sys.stderr)
    frames = {predictor.config.training_data.timeframes.base(): bars}
    signals = predictor.predict(symbol, frames)
    if args.out:
        signals.to_csv(args.out, index_label="timestamp")
        counts = signals["signal"].value_counts().to_dict()
        print(f"{len(signals)} signals written to {args.out}: {counts}")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 20, "display.width", 120):
            print(signals)
    return 0
