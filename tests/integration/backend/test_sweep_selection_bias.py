"""Sweeps that say what selection does to their numbers, through a real backend (local mode,
the tiny strategy, ``FakeTrainer`` results with validation-period statistics):

- an objective on a test-period metric is refused with INVALID_ARGUMENT and the reason;
- allowed with the flag, the sweep (GetSweep, ListSweeps, after a restart) and every trial's
  model (GetModel, ListModels by tag) are marked;
- GetSweep carries the best trial's deflated Sharpe ratio, the number the research library
  gives for the trials' own validation statistics;
- the CLI's flag, refusal and output, and the client's argument.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.sweeps.selection_bias import SELECTED_ON_TEST_TAG
from ktrdr.research.overfitting import backtest_overfitting
from ktrdr.research.selection import SharpeSample, deflated_sharpe
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import Backend, start_backend, stop_backend
from tests.support.fake_training import FAKE_VAL_BARS
from tests.support.needs import needs

pytestmark = needs("optuna")

FAST = [common_pb2.FieldOverride(path="model.training.epochs", value="1")]
LEARNING_RATES = pb.SweepParameter(
    path="model.training.learning_rate", choices=pb.Choices(values=["0.005", "0.05", "0.5"])
)


@pytest.fixture
def strategies(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return tmp_path


@pytest.fixture
async def backend(strategies: Path, sample_data_dir: Path):
    b = await start_backend(strategies, sample_data_dir, local_concurrency=2)
    yield b
    await stop_backend(b)


def request(**fields: object) -> pb.CreateSweepRequest:
    values: dict[str, object] = {
        "strategy_name": "tiny_rsi",
        "parameters": [LEARNING_RATES],
        "n_trials": 3,
        "parallelism": 2,
        "sampler": pb.SWEEP_SAMPLER_GRID,
        "pruner": pb.SWEEP_PRUNER_NONE,
        "field_overrides": FAST,
        **fields,
    }
    return pb.CreateSweepRequest(**values)  # type: ignore[arg-type]


async def run_to_end(backend: Backend, req: pb.CreateSweepRequest) -> pb.Sweep:
    created = (await backend.stub.CreateSweep(req)).sweep
    async for message in backend.stub.WatchSweep(pb.WatchSweepRequest(sweep_id=created.sweep_id)):
        last = message.event
    assert last.kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED
    got = await backend.stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))
    return got.sweep


@pytest.mark.parametrize("objective", ["test_accuracy", "test_return_strategy", "TEST_loss"])
async def test_an_objective_on_a_test_metric_is_refused_with_what_to_do(backend, objective):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await backend.stub.CreateSweep(request(objective=objective))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = refused.value.details() or ""
    assert f"objective {objective!r} is a test-period metric" in message
    assert "in-sample" in message  # why
    assert "val_loss" in message and "allow_test_objective" in message  # what to do instead
    assert not (await backend.stub.ListSweeps(pb.ListSweepsRequest())).sweeps


async def test_a_validation_objective_is_not_marked(backend):
    sweep = await run_to_end(backend, request(objective="val_sharpe_strategy"))
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    assert sweep.direction == pb.OBJECTIVE_DIRECTION_MAXIMIZE
    assert not sweep.selected_on_test
    model = await model_of(backend, sweep.best_trial)
    assert SELECTED_ON_TEST_TAG not in model.version.tags
    assert f"sweep={sweep.sweep_id}" in model.version.tags


async def model_of(backend: Backend, trial: pb.SweepTrial) -> pb.ModelDetails:
    op = (
        await backend.stub.GetOperation(pb.GetOperationRequest(operation_id=trial.operation_id))
    ).operation
    selector = pb.ModelSelector(strategy_name="tiny_rsi", version=op.result.delivery.model.version)
    return (await backend.stub.GetModel(pb.GetModelRequest(model=selector))).model


async def test_an_allowed_test_objective_marks_the_sweep_and_its_models(
    strategies: Path, sample_data_dir: Path
):
    backend = await start_backend(strategies, sample_data_dir, local_concurrency=2)
    try:
        sweep = await run_to_end(
            backend, request(objective="test_accuracy", allow_test_objective=True)
        )
        assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
        assert sweep.selected_on_test and sweep.objective == "test_accuracy"
        listed = (await backend.stub.ListSweeps(pb.ListSweepsRequest())).sweeps
        assert [s.selected_on_test for s in listed] == [True]
        for trial in sweep.trials:
            model = await model_of(backend, trial)
            assert {SELECTED_ON_TEST_TAG, f"sweep={sweep.sweep_id}"} <= set(model.version.tags)
        tagged = await backend.stub.ListModels(pb.ListModelsRequest(tag=SELECTED_ON_TEST_TAG))
        assert len(tagged.models) == len(sweep.trials) == 3
    finally:
        await stop_backend(backend)
    # the mark is stored: a restarted backend still reports it
    backend = await start_backend(strategies, sample_data_dir)
    try:
        again = await backend.stub.GetSweep(pb.GetSweepRequest(sweep_id=sweep.sweep_id))
        assert again.sweep.selected_on_test
    finally:
        await stop_backend(backend)


async def test_get_sweep_reports_the_deflated_sharpe_ratio_of_the_best_trial(backend):
    sweep = await run_to_end(backend, request())
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    dsr = sweep.deflated_sharpe
    best = sweep.best_trial
    assert dsr.trial_number == best.number and dsr.n_trials == 3
    assert dsr.observations == FAKE_VAL_BARS
    m = best.metrics
    sharpes = [t.metrics["val_bar_sharpe_strategy"] for t in sweep.trials]
    expected = deflated_sharpe(
        SharpeSample(
            m["val_bar_sharpe_strategy"],
            m["val_skewness_strategy"],
            m["val_kurtosis_strategy"],
            int(m["val_bars"]),
        ),
        3,
        statistics.variance(sharpes),
    )
    assert expected.probability is not None and dsr.HasField("probability")
    assert dsr.probability == pytest.approx(expected.probability)
    assert dsr.sharpe == pytest.approx(m["val_bar_sharpe_strategy"])
    assert dsr.expected_max_sharpe == pytest.approx(expected.expected_max_sharpe) and (
        dsr.expected_max_sharpe > 0
    )
    assert "probability the best trial's Sharpe is real given 3 trials" in dsr.description


async def test_the_cli_flag_the_refusal_and_the_client_argument(backend, capsys):
    from ktrdr.cli.main import main

    address = f"127.0.0.1:{backend.app.port}"
    token = (backend.settings.data_dir / "admin.token").read_text().strip()
    connection = ["--backend", address, "--token", token]
    argv = [
        "sweep",
        "create",
        "tiny_rsi",
        *connection,
        "--param",
        "model.training.learning_rate=choice:0.005,0.05",
        "--sampler",
        "grid",
        "--pruner",
        "none",
        "--set",
        "model.training.epochs=1",
        "--objective",
        "test_return_strategy:max",
    ]
    assert await asyncio.to_thread(main, argv) == 1
    err = capsys.readouterr().err
    assert "objective 'test_return_strategy' is a test-period metric" in err
    assert "--allow-test-objective" in err

    assert await asyncio.to_thread(main, [*argv, "--allow-test-objective", "--watch"]) == 0
    captured = capsys.readouterr()
    assert "warning: selected on the test metric test_return_strategy" in captured.err
    assert "warning: selected on the test metric test_return_strategy" in captured.out
    assert "deflated Sharpe ratio" in captured.out
    assert "probability the best trial's Sharpe is real given 2 trials" in captured.out

    assert await asyncio.to_thread(main, ["sweep", "list", *connection]) == 0
    assert "(selected on test)" in capsys.readouterr().out

    def with_the_client() -> None:
        from ktrdr.client import TrainingClient

        with TrainingClient(address, token=token) as client:
            created = client.create_sweep(
                "tiny_rsi",
                {"model.training.learning_rate": ["0.005", "0.05"]},
                sampler="grid",
                pruner="none",
                objective="test_accuracy:max",
                allow_test_objective=True,
                set_fields=["model.training.epochs=1"],
            )
            assert created.selected_on_test
            done = client.watch_sweep(created.sweep_id)
            assert done.selected_on_test and done.deflated_sharpe is not None
            assert done.deflated_sharpe.n_trials == 2
            assert str(done.deflated_sharpe).startswith("deflated Sharpe ratio")

    await asyncio.to_thread(with_the_client)


WALK_FORWARD = [*FAST, common_pb2.FieldOverride(path="evaluation.walk_forward.folds", value="4")]


async def test_get_sweep_reports_pbo_over_the_trials_walk_forward_folds(backend):
    # a walk-forward objective reads no test period: accepted, not marked
    sweep = await run_to_end(
        backend,
        request(
            field_overrides=WALK_FORWARD,
            objective="wf_mean_return",
            direction=pb.OBJECTIVE_DIRECTION_MAXIMIZE,
        ),
    )
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    assert not sweep.selected_on_test
    pbo = sweep.backtest_overfitting
    matrix = [[t.metrics[f"wf_fold_return_{k}"] for t in sweep.trials] for k in range(1, 5)]
    expected = backtest_overfitting(matrix, 4, metric=statistics.fmean)
    assert pbo.HasField("probability") and pbo.probability == pytest.approx(expected.probability)
    assert (pbo.n_trials, pbo.n_folds, pbo.combinations) == (3, 4, 6)
    assert pbo.description.startswith("probability of backtest overfitting")


async def test_without_folds_pbo_says_it_is_unavailable(backend):
    sweep = await run_to_end(backend, request())
    pbo = sweep.backtest_overfitting
    assert sweep.HasField("backtest_overfitting") and not pbo.HasField("probability")
    assert "no walk-forward folds" in pbo.reason
