"""``ktrdr models list|show|download|delete|alias|tag``: stored models through the backend's
model RPCs, from any directory or machine that reaches it (nothing reads the backend's
model directory). MODEL is STRATEGY (its latest version), STRATEGY:VERSION or STRATEGY@ALIAS;
``show`` also takes a local model directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
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
from ktrdr.client import ModelInfo
from ktrdr.client.records import read_model_metadata
from ktrdr.metric_order import lower_is_better

KEY_METRICS = ("val_accuracy_edge", "test_accuracy", "test_return_edge", "test_edge")
# The default order: validation accuracy minus the best baseline's on the same rows. The
# validation split is held out from fitting while the test split stays for a final check
# (ranking by a test metric and taking the top is selecting on the test split); and an edge
# over the baselines is comparable across label settings where raw accuracy is not (the
# class shares, and with them the accuracy a trivial rule gets, move with the threshold).
DEFAULT_SORT = "val_accuracy_edge"
NO_SORT = "none"


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    conn, js = _connection_options(), _json_option()
    models = sub.add_parser(
        "models",
        help="models stored by the backend",
        formatter_class=formatter,
        description="List, show, download, delete, alias and tag stored models, from any\n"
        "machine that reaches the backend. MODEL: STRATEGY (latest version),\n"
        "STRATEGY:VERSION or STRATEGY@ALIAS.\n\nexamples:\n"
        "  ktrdr models list                       # best val_accuracy_edge first\n"
        "  ktrdr models show rsi_single --plot training.png\n"
        "  ktrdr models alias rsi_single:3 production\n"
        "  ktrdr models download rsi_single@production --out ./model",
    )
    msub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    def command(name: str, text: str, example: str, handler: Any) -> argparse.ArgumentParser:
        p = msub.add_parser(
            name,
            parents=[conn, js],
            help=text,
            formatter_class=formatter,
            description=f"{text[0].upper()}{text[1:]}.\n\nexample:\n  {example}",
        )
        p.set_defaults(handler=_handles_errors(handler))
        return p

    p = command(
        "list",
        "stored model versions with aliases, tags, lineage and key metrics",
        "ktrdr models list --strategy rsi_single --sort test_accuracy --limit 5",
        _list,
    )
    p.add_argument("--strategy", default=None, help="only this strategy's models")
    p.add_argument("--alias", default="", help="only the version with this alias")
    p.add_argument("--tag", default="", help="only versions with this tag")
    p.add_argument(
        "--sort",
        default=DEFAULT_SORT,
        metavar="METRIC",
        help=f"order by a stored metric, best first (highest; lowest for *_loss); default "
        f"{DEFAULT_SORT}: validation accuracy minus the best baseline's (majority, logistic "
        f"regression, trend persistence) on the same rows, so ranking never selects on the "
        f"test split; versions without the metric come last. '{NO_SORT}': by strategy, then "
        "version",
    )
    p.add_argument("--reverse", action="store_true", help="reverse the --sort order")
    p.add_argument("--limit", type=int, default=0, help="at most this many")

    p = command(
        "show",
        "one model: lineage, metrics, per-class table, curves",
        "ktrdr models show rsi_single@production --plot training.png",
        _show,
    )
    p.add_argument("model", help="MODEL, or a local model directory")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write plot")

    p = command(
        "download",
        "download a model's bundle (cached by SHA-256, resumed, verified)",
        "ktrdr models download rsi_single:3 --out ./rsi_v3",
        _download,
    )
    p.add_argument("model", help="MODEL")
    p.add_argument("--out", type=Path, default=None, help="copy the bundle to this new directory")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: $KTRDR_CACHE_DIR/models")

    p = command(
        "delete",
        "delete one stored version (owner or admin)",
        "ktrdr models delete rsi_single:2",
        _delete,
    )
    p.add_argument("model", help="STRATEGY:VERSION")
    p.add_argument("--force", action="store_true", help="even if aliases point at it")

    p = command(
        "alias",
        "point an alias of a strategy at a version, or remove it (owner or admin)",
        "ktrdr models alias rsi_single:3 production   # --delete: ktrdr models alias "
        "rsi_single production --delete",
        _alias,
    )
    p.add_argument("model", help="STRATEGY:VERSION (with --delete: STRATEGY)")
    p.add_argument("alias", help="e.g. production, candidate")
    p.add_argument("--delete", action="store_true", help="remove the alias")

    p = command(
        "tag",
        "add or remove tags of a version (owner or admin)",
        "ktrdr models tag rsi_single:3 baseline eurusd   # --remove to take them off",
        _tag,
    )
    p.add_argument("model", help="MODEL")
    p.add_argument("tags", nargs="+", help="tags")
    p.add_argument("--remove", action="store_true", help="remove the tags instead")


def _metric(m: ModelInfo, name: str) -> str:
    return _fmt(m.test_metrics[name]) if name in m.test_metrics else "-"


def _list(args: argparse.Namespace) -> int:
    if args.sort == NO_SORT:
        args.sort = ""
    descending = None
    if args.sort and args.reverse:
        descending = lower_is_better(args.sort)
    models = _client(args).models(
        args.strategy,
        alias=args.alias,
        tag=args.tag,
        sort=args.sort,
        descending=descending,
        limit=args.limit,
    )
    if args.json:
        _print_json([m.to_dict() for m in models])
        return 0
    if not models:
        print("no models")
        return 0
    metrics = list(KEY_METRICS)
    if args.sort and args.sort not in metrics:
        metrics.insert(0, args.sort)
    _table(
        ["STRATEGY", "VERSION", "ALIASES", "TAGS", "OPERATION", "SEED", "MODE", "DEVICE"]
        + [name.upper() for name in metrics]
        + ["CREATED"],
        [
            [
                m.strategy,
                m.version,
                ",".join(m.aliases) or "-",
                ",".join(m.tags) or "-",
                m.operation_id[:12] or "-",
                "-" if m.seed is None else m.seed,
                (f"host {m.host}" if m.host else m.mode) or "-",
                m.device or "-",
                *[_metric(m, name) for name in metrics],
                m.created.strftime("%Y-%m-%d %H:%M:%S") if m.created else "-",
            ]
            for m in models
        ],
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from ktrdr.cli.client_commands import print_model_metadata

    local = Path(args.model)
    if local.is_dir():
        return print_model_metadata(args, local, read_model_metadata(local), None)
    client = _client(args)
    details = client.get_model(args.model)
    path = client.download_model(details.info)
    return print_model_metadata(args, path, read_model_metadata(path), details)


def _download(args: argparse.Namespace) -> int:
    client = _client(args)
    details = client.get_model(args.model)
    path = client.download_model(details.info, args.out, cache_dir=args.cache_dir)
    if args.json:
        _print_json({**details.info.to_dict(), "directory": str(path)})
    else:
        print(f"{details.info.name} (sha256 {details.info.sha256[:12]}): {path}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    client = _client(args)
    removed = client.delete_model(args.model, force=args.force)
    if args.json:
        _print_json({"deleted": args.model, "removed_aliases": removed})
    else:
        extra = f" (aliases removed: {', '.join(removed)})" if removed else ""
        print(f"deleted {args.model}{extra}")
    return 0


def _alias(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.delete:
        strategy = args.model.split(":")[0].split("@")[0]
        version = client.delete_alias(strategy, args.alias)
        if args.json:
            _print_json({"strategy": strategy, "alias": args.alias, "deleted_from": version})
        else:
            print(f"{strategy}@{args.alias} removed (pointed at version {version})")
        return 0
    spec = client.resolve_version(args.model)
    previous = client.set_alias(spec, args.alias)
    if args.json:
        _print_json(
            {
                "strategy": spec.strategy,
                "alias": args.alias,
                "version": spec.version,
                "previous_version": previous,
            }
        )
    else:
        moved = f" (moved from version {previous})" if previous else ""
        print(f"{spec.strategy}@{args.alias} -> version {spec.version}{moved}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.remove:
        tags = client.tag_model(args.model, remove=args.tags)
    else:
        tags = client.tag_model(args.model, add=args.tags)
    if args.json:
        _print_json({"model": args.model, "tags": tags})
    else:
        print(f"{args.model} tags: {', '.join(tags) or '-'}")
    return 0
