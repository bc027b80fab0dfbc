"""``ktrdr strategy validate FILE``: the command's body (the lead wires it into argparse)."""

from __future__ import annotations

import sys
from pathlib import Path

from ktrdr.config.loader import load_strategy
from ktrdr.config.summary import strategy_summary
from ktrdr.errors import StrategyConfigError


def validate_command(path: str | Path) -> int:
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
    return 0


__all__ = ["validate_command"]
