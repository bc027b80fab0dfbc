"""The live trial table of `ktrdr sweep watch`: what it shows from WatchSweep events, how it
fits the terminal, and when it redraws."""

from __future__ import annotations

import io

import pytest

from ktrdr.cli.live_sweep import REDRAW_EVERY_S, LiveTable, SweepBoard, wants_live_table
from ktrdr.training.v1 import backend_pb2 as pb

LR = "model.training.learning_rate"


def trial(number: int, status: int = pb.TRIAL_STATUS_RUNNING, **fields) -> pb.SweepTrial:
    return pb.SweepTrial(number=number, status=status, params={LR: f"0.0{number + 1}"}, **fields)


def snapshot(*trials: pb.SweepTrial) -> pb.SweepEvent:
    sweep = pb.Sweep(
        sweep_id="s1",
        status=pb.SWEEP_STATUS_RUNNING,
        strategy_name="tiny_rsi",
        objective="val_loss",
        direction=pb.OBJECTIVE_DIRECTION_MINIMIZE,
        n_trials=4,
        prune_metric="val_loss",
        trials=trials,
    )
    return pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_SNAPSHOT, sweep=sweep)


def epoch(t: pb.SweepTrial, n: int, loss: float) -> pb.SweepEvent:
    t.last_epoch, t.metrics["val_loss"] = n, loss
    return pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_TRIAL_EPOCH, trial=t, epoch=n)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_board_follows_trials_epochs_ends_and_the_best():
    board = SweepBoard("s1")
    board.update(snapshot(trial(0), trial(1)))
    board.update(epoch(trial(0), 3, 0.5))
    done = trial(1, pb.TRIAL_STATUS_PRUNED, pruned_at_epoch=2, last_epoch=2)
    board.update(pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_TRIAL_PRUNED, trial=done, message="x"))
    best = trial(0, pb.TRIAL_STATUS_COMPLETED, value=0.25, last_epoch=4)
    board.update(pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_BEST, trial=best, message="best: 0"))
    lines = board.lines()
    assert lines[0] == "sweep s1: running, 2/4 trials done; best #0 val_loss = 0.2500"
    assert lines[1] == "last: best: 0"
    # parameters by the shortest ending of their path that no other parameter shares
    assert lines[2].split() == ["#", "STATUS", "EPOCH", "VAL_LOSS", "VALUE", "learning_rate"]
    assert lines[3].split() == ["0*", "completed", "4", "-", "0.2500", "0.01"]
    assert lines[4].split() == ["1", "pruned@2", "2", "-", "-", "0.02"]


def test_the_table_fits_the_terminal_keeping_running_trials():
    board = SweepBoard("s1")
    board.update(snapshot(*(trial(i, pb.TRIAL_STATUS_COMPLETED, value=i) for i in range(30))))
    board.update(pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_TRIAL_STARTED, trial=trial(30)))
    lines = board.lines(width=40, height=10)
    assert len(lines) <= 10 and all(len(line) <= 40 for line in lines)
    assert any(line.startswith("30 ") for line in lines)  # the running trial is shown
    assert lines[-1].startswith("... 24 more trials")


def test_epochs_redraw_at_most_every_interval_and_ends_at_once():
    now = [0.0]
    out = Terminal()
    table = LiveTable(SweepBoard("s1"), out, clock=lambda: now[0])
    first = trial(0)
    table(snapshot(first))
    drawn = out.getvalue()
    assert drawn.startswith("\x1b[J") and drawn.count("\n") == 3
    table(epoch(first, 1, 0.9))
    assert out.getvalue() == drawn  # too soon for an epoch
    now[0] += REDRAW_EVERY_S
    table(epoch(first, 2, 0.8))
    assert out.getvalue()[len(drawn) :].startswith("\x1b[3F\x1b[J")  # over the last drawing
    before = out.getvalue()
    finished = trial(0, pb.TRIAL_STATUS_COMPLETED, value=0.8)
    table(pb.SweepEvent(kind=pb.SWEEP_EVENT_KIND_TRIAL_FINISHED, trial=finished, message="end"))
    assert out.getvalue() != before and "completed" in out.getvalue()


@pytest.mark.parametrize(
    ("stream", "term", "plain", "live"),
    [
        (Terminal(), "xterm-256color", False, True),
        (Terminal(), "xterm-256color", True, False),
        (Terminal(), "dumb", False, False),
        (io.StringIO(), "xterm", False, False),
    ],
)
def test_a_live_table_only_on_a_terminal_that_can_draw_one(monkeypatch, stream, term, plain, live):
    monkeypatch.setenv("TERM", term)
    assert wants_live_table(stream, plain=plain) is live


def test_a_sweep_selected_on_test_says_so_under_its_head():
    board = SweepBoard("s1")
    board.update(snapshot(trial(0)))
    assert not any("SELECTED ON TEST" in line for line in board.lines())
    marked = snapshot(trial(0))
    marked.sweep.objective, marked.sweep.selected_on_test = "test_accuracy", True
    board.update(marked)
    assert board.lines()[1] == (
        "SELECTED ON TEST (test_accuracy): the best trial's test numbers are in-sample"
    )
