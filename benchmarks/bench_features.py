"""Indicators + fuzzy memberships + features at 1M bars (part of ``make bench``).

Each measurement runs in a fresh interpreter (imports done before the clock starts, nothing
warmed): (A) the library's steps 2-4 (``compute_indicators``, ``compute_memberships``,
``assemble_features``) for the ``rsi_single`` example on 1M one-minute bars, against (B) the
raw TA-Lib calls of the same indicators on the same arrays. A and B alternate. Memory: the
peak RSS above the RSS before step 2 (``VmHWM``, reset through ``/proc/self/clear_refs``),
against the size of the final feature matrix.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ratios import collect  # noqa: E402

STRATEGY = ROOT / "examples" / "strategies" / "rsi_single.yaml"

COMMON = """
import json, sys, time
from pathlib import Path
import numpy as np
import pandas as pd

def status_kib(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])

frame = pd.read_parquet(sys.argv[1])
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
before = status_kib("VmRSS")
"""

LIBRARY = (
    COMMON
    + """
from ktrdr.config import load_strategy
from ktrdr.features import assemble_features, compute_indicators, compute_memberships
config = load_strategy(sys.argv[2])
data = {"EURUSD": {"1h": frame}}
start = time.perf_counter()
indicators = compute_indicators(config, data)
members = compute_memberships(config, indicators)
features = assemble_features(config, members, data)
elapsed = time.perf_counter() - start
matrix = features["EURUSD"].frame
del indicators, members
print(json.dumps({"s": elapsed, "peak_kib": status_kib("VmHWM") - before,
                  "matrix_bytes": int(matrix.memory_usage(index=False).sum()),
                  "shape": list(matrix.shape)}))
"""
)

RAW = (
    COMMON
    + """
import talib
close = np.ascontiguousarray(frame["close"].to_numpy(dtype=np.float64))
start = time.perf_counter()
talib.RSI(close, timeperiod=14)
talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
elapsed = time.perf_counter() - start
print(json.dumps({"s": elapsed, "peak_kib": status_kib("VmHWM") - before}))
"""
)


def synthetic_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """A random walk of ``n`` one-minute OHLCV bars (positive prices, realistic ranges)."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 4e-4, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 3e-4, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    index = pd.date_range("2020-01-01", periods=n, freq="1min", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def run(script: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args, _ = parser.parse_known_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="ktrdr-features-") as tmp:
        path = Path(tmp) / "bars.parquet"
        synthetic_bars(args.bars).to_parquet(path)
        times: list[float] = []
        memory: list[float] = []
        for _ in range(repeats):
            library = run(LIBRARY, str(path), str(STRATEGY))
            raw = run(RAW, str(path))
            times.append(library["s"] / raw["s"])
            memory.append(library["peak_kib"] * 1024 / library["matrix_bytes"])
            print(
                f"  library {library['s'] * 1000:.0f} ms (peak +{library['peak_kib'] / 1024:.0f} "
                f"MiB, matrix {library['shape']} {library['matrix_bytes'] / 2**20:.0f} MiB); "
                f"raw TA-Lib {raw['s'] * 1000:.0f} ms",
                flush=True,
            )
    bars = f"{args.bars / 1e6:g}M bars"
    collect(
        f"indicators + fuzzy + features, {bars}, fresh process",
        "the raw TA-Lib calls of the same indicators",
        times,
        "<= 5",
    )
    collect(
        f"peak memory of those steps, {bars}",
        "the final feature matrix",
        memory,
        "<= 3",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
