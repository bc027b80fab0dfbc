"""The walk-forward numbers as flat ``wf_*`` metrics (a result's summary, a sweep's objective,
PBO's per-fold returns), from ``metrics["walk_forward"]`` (:mod:`ktrdr.training.walk_forward`).

Standard library only: the backend, the client and the CLI read these names without numpy
or pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# The flat names of the walk-forward numbers (a result's summary, a sweep's objective).
PREFIX = "wf_"
FOLD_RETURN = "wf_fold_return_"  # + the fold's number: the per-fold returns PBO reads


def walk_forward_summary(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``wf_*``: the folds' mean and spread, the stitched out-of-sample run, each fold's return.

    None of them reads the test split's period: a sweep may select on them.
    """
    wf = metrics.get("walk_forward")
    if not wf:
        return {}
    out: dict[str, float] = {"wf_folds": float(len(wf["folds"]))}
    for name, stats in wf["aggregate"].items():
        out[f"wf_mean_{name}"] = float(stats["mean"])
        out[f"wf_std_{name}"] = float(stats["std"])
    out["wf_folds_beating_baselines"] = float(wf["folds_beating_baselines"])
    overall = wf["stitched"]["overall"]
    out["wf_oos_return"] = float(overall["strategy"]["return"])
    out["wf_oos_sharpe"] = float(overall["strategy"]["sharpe"])
    out["wf_oos_max_drawdown"] = float(overall["strategy"]["max_drawdown"])
    out["wf_oos_return_buy_and_hold"] = float(overall["buy_and_hold"]["return"])
    for row in wf["folds"]:
        out[f"{FOLD_RETURN}{row['fold']}"] = float(row["return"])
    return {k: v for k, v in out.items() if math.isfinite(v)}


__all__ = ["FOLD_RETURN", "PREFIX", "walk_forward_summary"]
