"""One way for every benchmark to report a ratio, and for ``make bench`` to table them all.

``report`` prints the figure for people and a tab-separated ``@ratio`` line that
``run_all.py`` collects into the closing table (figure, compared with, median [min..max] (n),
target). Ratios come from A and B alternated in one run, never from self-reported rates.
"""

from __future__ import annotations

import statistics

MARK = "@ratio"


def report(figure: str, against: str, ratios: list[float], target: str) -> None:
    """Print the ratio for people, then its line for the closing table."""
    median = statistics.median(ratios)
    print(
        f"{figure} / {against}: {median:.2f} [{min(ratios):.2f}..{max(ratios):.2f}] "
        f"({len(ratios)}), target {target}",
        flush=True,
    )
    collect(figure, against, ratios, target)


def collect(figure: str, against: str, ratios: list[float], target: str) -> None:
    """Only the line for the closing table (for a benchmark that prints its own)."""
    median, low, high = statistics.median(ratios), min(ratios), max(ratios)
    fields = [figure, against, f"{median:.3f}", f"{low:.3f}", f"{high:.3f}", str(len(ratios))]
    print("\t".join([MARK, *fields, target]), flush=True)


def parse(line: str) -> list[str] | None:
    """The fields of a ``@ratio`` line, or None for any other line."""
    fields = line.rstrip("\n").split("\t")
    return fields[1:] if fields[0] == MARK and len(fields) == 8 else None
