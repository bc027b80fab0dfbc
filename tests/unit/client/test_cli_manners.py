"""The CLI's manners without a backend: short numbers, tables that fit the terminal, progress
lines and "did you mean" for a mistyped command (exit codes and options against a fake
backend: ``tests/integration/client/test_cli_manners.py``)."""

from __future__ import annotations

import pytest

from ktrdr.cli import sweep_commands
from ktrdr.cli.main import main
from ktrdr.cli.summary import number
from ktrdr.cli.tables import fit, short_labels, short_value
from ktrdr.client.sweeps import SweepInfo
from ktrdr.training.v1 import backend_pb2 as pb

LR = "model.training.learning_rate"
LAYERS = "model.architecture.hidden_layers[0]"
ACT = "model.architecture.activation"


def test_floats_have_a_few_significant_digits() -> None:
    assert short_value("0.0012345678901234567") == "0.001235"
    assert short_value("1.2345678901234567e-05") == "1.235e-05"
    assert short_value(0.25) == "0.25" and short_value("64") == "64" and short_value(3.0) == "3"
    assert short_value("relu") == "relu" and short_value("[64, 32]") == "[64, 32]"
    assert number(0.00012345678) == "0.0001235" and number(0.61234) == "0.6123"


def test_labels_are_the_shortest_unique_endings() -> None:
    assert short_labels([LR, LAYERS, ACT]) == ["learning_rate", "hidden_layers[0]", "activation"]
    assert short_labels(["a.x.rate", "b.x.rate"]) == ["a.x.rate", "b.x.rate"]


def _sweep(trials: int = 12) -> SweepInfo:
    message = pb.Sweep(
        sweep_id="1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
        status=pb.SWEEP_STATUS_COMPLETED,
        strategy_name="rsi_single",
        objective="val_loss",
        n_trials=trials,
    )
    for n in range(trials):
        message.trials.add(
            number=n,
            status=pb.TRIAL_STATUS_COMPLETED,
            value=0.123456789 + n,
            last_epoch=5,
            operation_id=f"{n:032x}",
            params={LR: repr(0.000123456789 * (n + 1)), LAYERS: str(8 + n), ACT: "relu"},
        )
    message.best_trial.CopyFrom(message.trials[0])
    return SweepInfo.from_proto(message)


@pytest.mark.parametrize("columns", [80, 160])
def test_the_final_sweep_table_fits_the_terminal(columns, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    sweep_commands._print_sweep(_sweep(), as_json=False)
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("#"))) :]
    assert len(table) == 13 and table[0].split()[:5] == [
        "#",
        "STATUS",
        "VALUE",
        "EPOCH",
        "activation",
    ]
    assert "completed" in table[1]  # short columns are never cut
    assert all(len(line) <= columns for line in table), [len(line) for line in table]
    assert "0.0001235" in lines[2] and "0.000123456789" not in "\n".join(lines)
    if columns == 160:  # room for everything: nothing cut
        assert "…" not in "\n".join(table) and f"{11:032x}" in table[-1]


def test_a_table_is_cut_to_width_widest_column_first() -> None:
    lines = fit(["NAME", "VALUE"], [["x" * 100, "0.5"]], 40)
    assert len(lines[1]) <= 40 and lines[1].rstrip().endswith("0.5") and "…" in lines[1]
    lines = fit(["A", "B", "C"], [["a" * 30, "b" * 30, "c" * 30]], 25)
    assert all(len(line) <= 25 for line in lines) and lines[0].split() == ["A", "B"]


def test_a_mistyped_command_gets_a_suggestion(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["opz", "list"])
    assert exited.value.code == 2
    assert "did you mean 'ops'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["models", "shwo", "x"])
    assert "did you mean 'show'?" in capsys.readouterr().err


def test_progress_lines_have_one_prefix_and_show_why_the_model_waits() -> None:
    import io

    from ktrdr.client.progress import ProgressDisplay
    from ktrdr.training.v1 import common_pb2

    out = io.StringIO()
    show = ProgressDisplay(file=out, bars=False)
    waiting = "waiting for the model from host h: the host cannot deliver it yet (UNAVAILABLE: x)"
    for kind, message in (
        (common_pb2.PROGRESS_KIND_HEARTBEAT, "still working"),
        (common_pb2.PROGRESS_KIND_HEARTBEAT, waiting),
        (common_pb2.PROGRESS_KIND_HEARTBEAT, waiting),
        (common_pb2.PROGRESS_KIND_FAILED, "failed: data directory x does not exist"),
    ):
        show(common_pb2.ProgressEvent(kind=kind, message=message, percent=99.0))
    lines = out.getvalue().splitlines()
    assert lines == [
        f"[ 99.0%] training: {waiting}",
        "[ 99.0%] training: failed: data directory x does not exist",
    ]
