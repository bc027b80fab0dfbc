"""A sweep rebuilt as an Optuna study on the client: the space, the trials' states, values and
parameters as the backend's study has them, and Optuna's analysis working on it."""

from __future__ import annotations

import warnings

import pytest

from ktrdr.client.errors import KtrdrClientError
from ktrdr.client.sweep_study import to_study
from ktrdr.client.sweeps import SweepInfo
from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.needs import needs

pytestmark = needs("optuna")

LR, LAYERS, ACT = (
    "model.training.learning_rate",
    "model.architecture.hidden_layers[0]",
    "model.architecture.activation",
)


def sweep(*trials: pb.SweepTrial, direction=pb.OBJECTIVE_DIRECTION_MINIMIZE) -> SweepInfo:
    return SweepInfo.from_proto(
        pb.Sweep(
            sweep_id="abc",
            status=pb.SWEEP_STATUS_COMPLETED,
            strategy_name="tiny_rsi",
            objective="val_loss",
            direction=direction,
            prune_metric="val_loss",
            parameters=[
                pb.SweepParameter(
                    path=LR, float_range=pb.FloatRange(low=1e-4, high=1e-1, log=True)
                ),
                pb.SweepParameter(path=LAYERS, int_range=pb.IntRange(low=4, high=16, step=4)),
                pb.SweepParameter(path=ACT, choices=pb.Choices(values=["relu", "tanh"])),
            ],
            trials=trials,
        )
    )


def trial(n: int, status: int, value: float | None = None, **fields) -> pb.SweepTrial:
    t = pb.SweepTrial(
        number=n,
        status=status,
        params={
            LR: f"{1e-3 * (n + 1)!r}",
            LAYERS: str(4 + 4 * (n % 3)),
            ACT: ("relu", "tanh")[n % 2],
        },
        operation_id=f"op{n}",
        **fields,
    )
    if value is not None:
        t.value = value
    return t


def test_the_study_has_the_finished_trials_with_their_states_and_values():
    import optuna

    study = to_study(
        sweep(
            trial(0, pb.TRIAL_STATUS_COMPLETED, 0.9),
            trial(
                1,
                pb.TRIAL_STATUS_PRUNED,
                pruned_at_epoch=2,
                last_epoch=2,
                metrics={"val_loss": 1.5},
            ),
            trial(2, pb.TRIAL_STATUS_COMPLETED, 0.4),
            trial(3, pb.TRIAL_STATUS_FAILED),
            trial(4, pb.TRIAL_STATUS_RUNNING),
            trial(5, pb.TRIAL_STATUS_INTERRUPTED),
            trial(6, pb.TRIAL_STATUS_COMPLETED, 0.7),
        )
    )
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE"]
    assert study.best_value == 0.4 and study.best_trial.user_attrs["operation_id"] == "op2"
    assert study.best_params == {LR: 1e-3 * 3, LAYERS: 12, ACT: "relu"}
    assert study.trials[1].intermediate_values == {2: 1.5}
    assert study.direction.name == "MINIMIZE" and study.user_attrs["objective"] == "val_loss"
    importances = optuna.importance.get_param_importances(study)
    assert set(importances) == {LR, LAYERS, ACT}
    history = [t.value for t in study.trials if t.value is not None]
    assert history == [0.9, 0.4, 0.7]


def test_optunas_matplotlib_plots_render_from_it(monkeypatch):
    import optuna

    monkeypatch.setenv("MPLBACKEND", "Agg")
    pytest.importorskip("matplotlib")
    from optuna.visualization import matplotlib as plots

    study = to_study(
        sweep(
            *(trial(n, pb.TRIAL_STATUS_COMPLETED, 1.0 / (n + 1)) for n in range(4)),
            direction=pb.OBJECTIVE_DIRECTION_MAXIMIZE,
        )
    )
    assert study.best_value == 1.0
    for plot in (plots.plot_optimization_history, plots.plot_param_importances):
        with warnings.catch_warnings():  # Optuna calls its matplotlib plots experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot(study)
        assert axes.has_data()


def test_a_non_number_in_a_numeric_range_is_named():
    bad = trial(0, pb.TRIAL_STATUS_COMPLETED, 0.1)
    bad.params[LAYERS] = "many"
    with pytest.raises(KtrdrClientError, match=r"hidden_layers\[0\]='many' is not a number"):
        to_study(sweep(bad))
