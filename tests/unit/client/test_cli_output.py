"""What the CLI prints about a run: early stopping, plain progress lines off a terminal, whole
epoch ticks on the plots."""

from __future__ import annotations

from ktrdr.cli.local_commands import _ConsoleProgress
from ktrdr.cli.summary import early_stop_summary
from ktrdr.training.progress import ProgressEvent, ProgressKind


def test_early_stop_summary() -> None:
    metadata = {
        "metrics": {"training": {"stopped_early": True, "epochs_run": 15, "best_epoch": 10}},
        "strategy": {"model": {"training": {"early_stopping": {"patience": 5}}}},
    }
    assert early_stop_summary(metadata) == (
        "  stopped early at epoch 15: no val_loss improvement for 5 epochs; kept epoch 10"
    )
    metadata["metrics"]["training"]["stopped_early"] = False
    assert early_stop_summary(metadata) is None


def test_progress_off_a_terminal_is_plain_lines(capsys) -> None:
    progress = _ConsoleProgress()  # pytest's captured stderr is no terminal
    for epoch in (1, 2):
        progress(
            ProgressEvent(
                ProgressKind.EPOCH,
                epoch=epoch,
                total_epochs=2,
                metrics={"train_loss": 0.5, "learning_rate": 0.001},
            )
        )
    progress.close()
    err = capsys.readouterr().err
    assert err.splitlines() == ["epoch 1/2  train_loss 0.5000", "epoch 2/2  train_loss 0.5000"]
    assert "\r" not in err


def test_epoch_ticks_are_whole_numbers() -> None:
    from matplotlib.figure import Figure

    from ktrdr.plots.training import _curve

    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e} for e in range(1, 19)]
    figure = Figure()
    ax = figure.add_subplot()
    _curve(ax, history, "loss", "Loss", best=10)
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 18]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_elapsed_counts_from_the_operations_start(tmp_path) -> None:
    import io
    import time

    from ktrdr.client.progress import ProgressDisplay
    from ktrdr.training.v1 import common_pb2

    out = io.StringIO()
    display = ProgressDisplay(file=out, bars=True, started=time.time() - 3725)
    display(common_pb2.ProgressEvent(kind=common_pb2.PROGRESS_KIND_STEP_STARTED, step=1, percent=5))
    display.close()
    assert "[1:02:0" in out.getvalue()  # 1 h 2 min 5 s ago, not 00:00
