"""A sweep logged to a real MLflow tracking store (SQLite) as a parent run with its trials as
child runs, read back with ``mlflow.search_runs``; an outage while the sweep runs loses
nothing, nests the runs correctly once the store is back and logs nothing twice."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from ktrdr.backend.tracking.sweeps import PARENT_TAG, SWEEP_TAG, space_spec
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import start_backend, stop_backend
from tests.support.needs import needs
from tests.support.timing import scaled

pytestmark = needs("mlflow", "optuna")

WAIT_S = scaled(120.0)  # MLflow's first SQLite connection runs its migrations (seconds under load)
FAST = [common_pb2.FieldOverride(path="model.training.epochs", value="1")]


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema created once (copied for each test)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-sweep-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def strategies(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return tmp_path / "strategies"


def sweep_request(n_trials: int = 3) -> pb.CreateSweepRequest:
    return pb.CreateSweepRequest(
        strategy_name="tiny_rsi",
        parameters=[
            pb.SweepParameter(
                path="model.training.learning_rate",
                float_range=pb.FloatRange(low=1e-3, high=1e-1, log=True),
            ),
            pb.SweepParameter(
                path="model.architecture.hidden_layers[0]", int_range=pb.IntRange(low=4, high=16)
            ),
        ],
        objective="val_loss",
        n_trials=n_trials,
        parallelism=2,
        pruner=pb.SWEEP_PRUNER_NONE,
        sampler=pb.SWEEP_SAMPLER_RANDOM,
        seed=5,
        field_overrides=FAST,
    )


async def run_sweep(stub, request: pb.CreateSweepRequest) -> pb.Sweep:
    created = (await stub.CreateSweep(request)).sweep
    async for message in stub.WatchSweep(pb.WatchSweepRequest(sweep_id=created.sweep_id)):
        last = message.event
    assert last.kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED
    return last.sweep  # type: ignore[no-any-return]


async def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def check_runs(uri: str, sweep: pb.Sweep) -> None:
    """One parent run for the sweep, its children exactly the sweep's trials, nothing twice."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    everything = mlflow.search_runs(experiment_names=["ktrdr"])
    assert len(everything) == 1 + len(sweep.trials)
    parents = mlflow.search_runs(
        experiment_names=["ktrdr"], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep.sweep_id}'"
    )
    assert len(parents) == 1
    parent = parents.iloc[0]
    assert parent["tags.ktrdr.kind"] == "sweep"
    assert parent["tags.mlflow.runName"] == f"sweep {sweep.sweep_id[:12]} tiny_rsi"
    assert parent["status"] == "FINISHED" and parent["tags.ktrdr.status"] == "completed"
    assert parent["tags.ktrdr.objective"] == "val_loss"
    assert parent["tags.ktrdr.direction"] == "minimize"
    assert parent["tags.ktrdr.sampler"] == "random" and parent["tags.ktrdr.pruner"] == "none"
    assert parent["tags.ktrdr.seed"] == "5"
    assert parent["params.space.model.training.learning_rate"] == "float [0.001, 0.1] log"
    assert parent["params.space.model.architecture.hidden_layers.0"] == "int [4, 16]"
    assert parent["params.n_trials"] == str(len(sweep.trials))
    assert parent["params.parallelism"] == "2"
    best = sweep.best_trial
    assert parent["metrics.best_value"] == pytest.approx(best.value)
    assert parent["metrics.best_trial"] == best.number
    for path, value in best.params.items():
        assert parent[f"params.best.{path.replace('[', '.').replace(']', '')}"] == value
    assert parent["tags.ktrdr.best_operation_id"] == best.operation_id
    # selected on a validation metric; the deflated Sharpe ratio of the best trial, in words too
    assert parent["tags.ktrdr.selected_on_test"] == "false"
    assert sweep.deflated_sharpe.HasField("probability")
    assert parent["metrics.deflated_sharpe"] == pytest.approx(sweep.deflated_sharpe.probability)
    assert parent["metrics.deflated_sharpe.n_trials"] == sweep.deflated_sharpe.n_trials
    assert parent["tags.ktrdr.deflated_sharpe"] == sweep.deflated_sharpe.description
    children = mlflow.search_runs(
        experiment_names=["ktrdr"], filter_string=f"tags.`{PARENT_TAG}` = '{parent['run_id']}'"
    )
    by_trial = {int(row["tags.ktrdr.trial"]): row for _, row in children.iterrows()}
    assert sorted(by_trial) == [t.number for t in sweep.trials]
    for trial in sweep.trials:
        child = by_trial[trial.number]
        assert child["tags.ktrdr.operation_id"] == trial.operation_id
        assert child["tags.ktrdr.kind"] == "trial" and child["status"] == "FINISHED"
        assert child["tags.ktrdr.sweep"] == sweep.sweep_id
        lr = child["params.model.training.learning_rate"]
        assert float(lr) == float(trial.params["model.training.learning_rate"])
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(parent["run_id"], "objective")
    by_step = {m.step: m.value for m in history}
    assert sorted(by_step) == [t.number for t in sweep.trials] and len(history) == len(by_step)
    values = [t.value for t in sweep.trials]
    assert [by_step[t.number] for t in sweep.trials] == pytest.approx(values)
    assert "strategy.yaml" in {a.path for a in client.list_artifacts(parent["run_id"])}


async def test_a_sweep_is_a_parent_run_with_its_trials_as_children(
    tmp_path, sample_data_dir, empty_store, strategies
):
    (tmp_path / "tracking").mkdir()
    shutil.copy2(empty_store, tmp_path / "tracking" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    backend = await start_backend(
        tmp_path, sample_data_dir, mlflow_tracking_uri=uri, local_concurrency=2
    )
    try:
        sweep = await run_sweep(backend.stub, sweep_request())
        assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
        tracker = backend.app.tracker
        # 3 trials + the sweep's start and end
        await wait_for(lambda: tracker.logged >= 5 and not tracker.pending(), "the runs")
    finally:
        await stop_backend(backend)
    check_runs(uri, sweep)


async def test_an_outage_during_the_sweep_nests_every_run_once_the_store_is_back(
    tmp_path, sample_data_dir, empty_store, strategies, monkeypatch
):
    # MLflow retries opening a SQLite store 15 times with growing sleeps inside one attempt.
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 2)
    # The store's directory is a link to a plain file: unreachable, and MLflow cannot create
    # it (a missing directory it would create); the link is swapped at once to bring it back.
    (tmp_path / "tracking").mkdir()
    (tmp_path / "tracking" / "blocker").touch()
    place = tmp_path / "tracking" / "store"
    place.symlink_to(tmp_path / "tracking" / "blocker")
    uri = f"sqlite:///{place / 'mlflow.db'}"
    settings = {"mlflow_tracking_uri": uri, "mlflow_retry_max_s": 0.5, "local_concurrency": 2}
    backend = await start_backend(tmp_path, sample_data_dir, **settings)
    try:
        sweep = await run_sweep(backend.stub, sweep_request())  # the whole sweep while down
        assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
        tracker = backend.app.tracker
        await wait_for(lambda: tracker.last_error != "", "a failed attempt")
        await wait_for(lambda: len(tracker.pending()) == 5, "every entry spooled")
        pending = tracker.pending()
        assert pending[0] == f"sweep-{sweep.sweep_id}"
        assert pending[-1] == f"sweep-{sweep.sweep_id}.end"
        assert sorted(pending[1:-1]) == sorted(t.operation_id for t in sweep.trials)
        # Without the sweep's start entry (a sweep begun before tracking was turned on) the
        # first trial logged creates the parent run.
        (tracker.spool_dir / f"sweep-{sweep.sweep_id}.json").unlink()
        assert tracker.logged == 0
        # The store comes back while the backend runs (the link replaced in one step).
        staging = tmp_path / "tracking" / "staging"
        staging.mkdir()
        shutil.copy2(empty_store, staging / "mlflow.db")
        (tmp_path / "tracking" / "next").symlink_to(staging)
        os.replace(tmp_path / "tracking" / "next", place)
        await wait_for(lambda: not tracker.pending() and tracker.logged >= 4, "the late runs")
        assert tracker.last_error == ""
    finally:
        await stop_backend(backend)
    check_runs(uri, sweep)


async def test_a_cancelled_sweep_is_a_killed_parent_run(
    tmp_path, sample_data_dir, empty_store, strategies
):
    import mlflow

    (tmp_path / "tracking").mkdir()
    shutil.copy2(empty_store, tmp_path / "tracking" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    backend = await start_backend(tmp_path, sample_data_dir, mlflow_tracking_uri=uri)
    try:
        created = (await backend.stub.CreateSweep(sweep_request(n_trials=20))).sweep
        cancel = pb.CancelSweepRequest(sweep_id=created.sweep_id, reason="enough")
        cancelled = (await backend.stub.CancelSweep(cancel)).sweep
        assert cancelled.status == pb.SWEEP_STATUS_CANCELLED
        tracker = backend.app.tracker
        await wait_for(lambda: tracker.logged >= 2 and not tracker.pending(), "the sweep's run")
    finally:
        await stop_backend(backend)
    mlflow.set_tracking_uri(uri)
    parents = mlflow.search_runs(
        experiment_names=["ktrdr"], filter_string=f"tags.`{SWEEP_TAG}` = '{created.sweep_id}'"
    )
    assert len(parents) == 1
    parent = parents.iloc[0]
    assert parent["status"] == "KILLED" and parent["tags.ktrdr.status"] == "cancelled"
    assert parent["tags.ktrdr.error"] == "enough"


def test_space_spec_reads_like_the_request() -> None:
    choice = pb.SweepParameter(path="a", choices=pb.Choices(values=["relu", "tanh"]))
    stepped = pb.SweepParameter(path="b", int_range=pb.IntRange(low=8, high=64, step=8))
    assert space_spec(choice) == "choice [relu, tanh]"
    assert space_spec(stepped) == "int [8, 64] step 8"
