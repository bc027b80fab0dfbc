"""The live trial table of ``ktrdr sweep watch`` on a terminal: one row per trial, redrawn in
place as the WatchSweep stream reports (at most a few times a second; at once for a trial
that starts, ends or becomes the best). Piped or with ``--plain``, the command prints one
line per event instead, which suits logs.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ktrdr.cli.summary import number
from ktrdr.cli.tables import fit, short_labels, short_value
from ktrdr.client.sweeps import TrialInfo
from ktrdr.training.v1 import backend_pb2 as pb

REDRAW_EVERY_S = 0.25
# Events after which the table is redrawn at once (an epoch waits for the next redraw).
_AT_ONCE = {
    pb.SWEEP_EVENT_KIND_SNAPSHOT,
    pb.SWEEP_EVENT_KIND_TRIAL_STARTED,
    pb.SWEEP_EVENT_KIND_TRIAL_PRUNED,
    pb.SWEEP_EVENT_KIND_TRIAL_FINISHED,
    pb.SWEEP_EVENT_KIND_BEST,
    pb.SWEEP_EVENT_KIND_SWEEP_FINISHED,
}
_DONE = ("completed", "pruned", "failed")


@dataclass
class SweepBoard:
    """What the table shows: the sweep's settings and its trials, from WatchSweep events."""

    sweep_id: str
    status: str = "running"
    strategy: str = ""
    objective: str = ""
    direction: str = ""
    prune_metric: str = ""
    n_trials: int = 0
    selected_on_test: bool = False
    trials: dict[int, TrialInfo] = field(default_factory=dict)
    best: int | None = None
    last_message: str = ""

    def update(self, e: pb.SweepEvent) -> None:
        if e.HasField("sweep"):
            s = e.sweep
            self.status = pb.SweepStatus.Name(s.status).removeprefix("SWEEP_STATUS_").lower()
            self.strategy, self.objective = s.strategy_name, s.objective
            self.direction = (
                pb.ObjectiveDirection.Name(s.direction).removeprefix("OBJECTIVE_DIRECTION_").lower()
            )
            self.prune_metric, self.n_trials = s.prune_metric, s.n_trials
            self.selected_on_test = s.selected_on_test
            for t in s.trials:
                self.trials[t.number] = TrialInfo.from_proto(t)
            if s.HasField("best_trial"):
                self.best = s.best_trial.number
        if e.HasField("trial"):
            trial = TrialInfo.from_proto(e.trial)
            self.trials[trial.number] = trial
            if e.kind == pb.SWEEP_EVENT_KIND_BEST:
                self.best = trial.number
        if e.message and e.kind != pb.SWEEP_EVENT_KIND_TRIAL_EPOCH:
            self.last_message = e.message

    def lines(self, width: int = 120, height: int = 40) -> list[str]:
        """The table as text lines that fit ``width`` x ``height`` (trials that do not fit are
        counted: running trials first, then the newest)."""
        done = sum(t.status in _DONE for t in self.trials.values())
        best = self.trials.get(self.best) if self.best is not None else None
        head = f"sweep {self.sweep_id}: {self.status}, {done}/{self.n_trials} trials done"
        if best is not None and best.value is not None:
            head += f"; best #{best.number} {self.objective} = {number(best.value)}"
        out = [head]
        if self.selected_on_test:
            out.append(
                f"SELECTED ON TEST ({self.objective}): the best trial's test numbers are in-sample"
            )
        if self.last_message:
            out.append(f"last: {self.last_message}")
        metric = self.prune_metric or "metric"
        paths = sorted({p for t in self.trials.values() for p in t.params})
        headers = ["#", "STATUS", "EPOCH", metric.upper(), "VALUE", *short_labels(paths)]
        rows = [self._row(t, metric, paths) for t in self._shown(max(height - len(out) - 2, 1))]
        hidden = len(self.trials) - len(rows)
        out += fit(headers, rows, width)
        if hidden:
            out.append(f"... {hidden} more trials (ktrdr sweep show {self.sweep_id})")
        return [line[:width] for line in out]

    def _shown(self, room: int) -> list[TrialInfo]:
        running = [t for t in self.trials.values() if t.status == "running"]
        others = [t for t in self.trials.values() if t.status != "running"]
        picked = running[:room] + sorted(others, key=lambda t: -t.number)[: room - len(running)]
        return sorted(picked[:room], key=lambda t: t.number)

    def _row(self, t: TrialInfo, metric: str, paths: list[str]) -> list[str]:
        status = t.status + (f"@{t.pruned_at_epoch}" if t.pruned_at_epoch else "")
        mark = "*" if t.number == self.best else ""
        return [
            f"{t.number}{mark}",
            status,
            str(t.last_epoch or "-"),
            number(t.metrics[metric]) if metric in t.metrics else "-",
            number(t.value) if t.value is not None else "-",
            *(short_value(t.params.get(p, "")) for p in paths),
        ]


def wants_live_table(stream: TextIO, *, plain: bool) -> bool:
    """A live table on an interactive terminal that can move its cursor; lines otherwise."""
    if plain or not stream.isatty():
        return False
    return os.environ.get("TERM", "") not in ("", "dumb")


class LiveTable:
    """Redraws a SweepBoard in place on a terminal (ANSI cursor movement)."""

    def __init__(self, board: SweepBoard, stream: TextIO, *, clock: Any = time.monotonic):
        self.board = board
        self.stream = stream
        self.clock = clock
        self._drawn = 0
        self._last = float("-inf")

    def __call__(self, e: pb.SweepEvent) -> None:
        self.board.update(e)
        now = self.clock()
        if e.kind in _AT_ONCE or now - self._last >= REDRAW_EVERY_S:
            self.draw()
            self._last = now

    def draw(self) -> None:
        size = shutil.get_terminal_size((120, 40))
        lines = self.board.lines(size.columns - 1, size.lines - 1)
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.stream.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)
