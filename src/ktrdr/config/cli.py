"""``ktrdr strategy validate FILE [--data-dir DIR]``: the command's body.

With a data directory the strategy's indicators are computed on its data (symbols,
timeframes, date range) and the fuzzy set coverage table and its warnings are printed
(:mod:`ktrdr.fuzzy.coverage`); warnings do not change the exit code, unreadable data does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ktrdr.config.loader import load_strategy
from ktrdr.config.summary import strategy_summary
from ktrdr.errors import StrategyConfigError, TrainingError


def validate_command(path: str | Path, data_dir: str | Path | None = None) -> int:
    """Print "valid" and a summary (exit code 0), or every problem to stderr (exit code 1)."""
    try:
        cfg = load_strategy(path)
    except StrategyConfigError as exc:
        count = len(exc.errors)
        print(
            f"{path}: invalid strategy ({count} problem{'s' if count != 1 else ''})",
            file=sys.stderr,
        )
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    print("valid")
    print(strategy_summary(cfg))
    for notice in cfg.notices():
        print(f"notice: {notice}")
    if data_dir is None:
        return 0
    from ktrdr.data import load_market_data
    from ktrdr.features import compute_indicators
    from ktrdr.fuzzy.coverage import fuzzy_coverage

    td = cfg.training_data
    try:
        data = load_market_data(
            data_dir,
            td.symbols.resolved(),
            td.timeframes.resolved(),
            td.start_date,
            td.end_date,
            td.date_format,
        )
        coverage = fuzzy_coverage(cfg, compute_indicators(cfg, data))
    except TrainingError as exc:
        print(f"{path}: cannot check it on the data in {data_dir}: {exc}", file=sys.stderr)
        return 1
    print(coverage.table())
    for warning in coverage.warnings:
        print(f"warning: {warning}")
    if not coverage.warnings:
        print("coverage: every fuzzy set is active on enough bars")
    return 0


__all__ = ["validate_command"]
