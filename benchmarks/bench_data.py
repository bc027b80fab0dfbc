"""Market data loading at the floor (part of ``make bench``): ``read_ohlcv_file`` against
the bare Arrow read of the same file, alternated in one run.

The files are synthetic hourly bars (``--bars`` rows, a UTC timestamp column and OHLCV) written
once as Parquet and as CSV. The floor is what any loader pays to have the file as a pandas
frame: ``pyarrow.parquet.read_table(path).to_pandas()`` and
``pyarrow.csv.read_csv(path).to_pandas()``. ``read_ohlcv_file`` does more (the columns found
by name, timestamps to UTC, every row checked, sorted and unique), and the figure is what that
costs: CPU time of all threads (``time.process_time``; Arrow reads with several), per round
the loader's over the floor's, a round being ``--calls`` loads of each, the order of the two
swapped every round. Target: within 1.1 of the floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ratios import report  # noqa: E402

from ktrdr.data.reader import read_ohlcv_file  # noqa: E402


def synthetic_bars(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.1 + np.cumsum(rng.normal(0, 1e-3, n))
    spread = np.abs(rng.normal(0, 5e-4, n))
    open_ = close + rng.normal(0, 2e-4, n)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2005-01-03", periods=n, freq="h"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(0, 10_000, n).astype("float64"),
        }
    )


def cpu_s(work: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        work()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5, help="loads per timing")
    parser.add_argument("--quick", action="store_true", help="50,000 bars, 7 rounds")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.bars, args.rounds = min(args.bars, 50_000), min(args.rounds, 7)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        bars = synthetic_bars(args.bars)
        parquet, csv = Path(tmp) / "EURUSD_1h.parquet", Path(tmp) / "EURUSD_1h.csv"
        bars.to_parquet(parquet, index=False)
        bars.to_csv(csv, index=False)
        figures: dict[str, tuple[Callable[[], object], Callable[[], object], str]] = {
            "Parquet": (
                lambda: read_ohlcv_file(parquet),
                lambda: pq.read_table(parquet).to_pandas(),
                "read_table().to_pandas()",
            ),
            "CSV": (
                lambda: read_ohlcv_file(csv),
                lambda: pa_csv.read_csv(csv).to_pandas(),
                "pyarrow.csv.read_csv().to_pandas()",
            ),
        }
        pd.testing.assert_frame_equal(read_ohlcv_file(parquet), read_ohlcv_file(csv))  # alike
        for name, (loader, floor, against) in figures.items():
            loader(), floor()  # warm: imports, page cache
            ratios, a_ms, b_ms = [], [], []
            for round_ in range(args.rounds):
                if round_ % 2:
                    b = cpu_s(floor, args.calls)
                    a = cpu_s(loader, args.calls)
                else:
                    a = cpu_s(loader, args.calls)
                    b = cpu_s(floor, args.calls)
                ratios.append(a / b)
                a_ms.append(a / args.calls * 1e3)
                b_ms.append(b / args.calls * 1e3)
            print(
                f"{name}, {args.bars} bars: read_ohlcv_file {np.median(a_ms):.1f} ms CPU, "
                f"floor {np.median(b_ms):.1f} ms (medians)",
                flush=True,
            )
            report(f"{name} load, CPU", against, ratios, "<= 1.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
