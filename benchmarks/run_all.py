"""`make bench`: every benchmark, one after the other, then one table of all their ratios."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ratios import parse  # noqa: E402

BENCHMARKS = [
    "bench_training.py",
    "bench_transfer.py",
    "bench_backend.py",
    "bench_security.py",
    "bench_workers.py",
    "bench_footprint.py",
    "bench_features.py",
    "bench_data.py",
    "bench_ray.py",
    "bench_sweep.py",
    "bench_tracking.py",
    "bench_listing.py",
    "bench_metrics.py",
    "bench_tracing.py",
]


def run(path: Path, rows: list[list[str]], options: list[str]) -> int:
    """Run one benchmark, echoing its output and keeping its ratio lines."""
    with subprocess.Popen(
        [sys.executable, str(path), *options], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            fields = parse(line)
            if fields is None:
                print(line, end="", flush=True)
            else:
                rows.append([path.stem, *fields])
    return process.returncode


def table(rows: list[list[str]]) -> None:
    head = ["benchmark", "figure", "compared with", "ratio median [min..max] (n)", "target"]
    lines = [
        [bench, figure, against, f"{median} [{low}..{high}] ({n})", target]
        for bench, figure, against, median, low, high, n, target in rows
    ]
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    print("\n=== all ratios (A and B alternated in one run) ===")
    for row in [head, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every benchmark's --quick")
    options = ["--quick"] if parser.parse_args().quick else []
    failed: list[str] = []
    rows: list[list[str]] = []
    for name in BENCHMARKS:
        path = HERE / name
        print(f"\n=== {name} ===", flush=True)
        if run(path, rows, options):
            failed.append(name)
    table(rows)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
