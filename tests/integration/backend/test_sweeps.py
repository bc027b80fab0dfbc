"""Sweeps through a real backend (local mode, the tiny strategy): trials are operations with
models, the median pruner stops bad trials, cancel keeps finished trials, and a restart
resumes a sweep without repeating finished trials."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import time
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.sweeps.runner import best_alias
from ktrdr.backend.sweeps.store import SweepRecord, SweepStore, TrialRecord
from ktrdr.backend.tables import writes
from ktrdr.client import TrainingClient
from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import start_backend, stop_backend
from tests.support.needs import needs
from tests.support.sweeps import space

pytestmark = needs("optuna")

FAST = [common_pb2.FieldOverride(path="model.training.epochs", value="1")]


@pytest.fixture
async def sweep_backend(tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    b = await start_backend(tmp_path, sample_data_dir, local_concurrency=2, worker_spares=2)
    yield b
    await stop_backend(b)


async def watch_to_end(stub, sweep_id: str) -> list[pb.SweepEvent]:
    events = []
    async for message in stub.WatchSweep(pb.WatchSweepRequest(sweep_id=sweep_id)):
        events.append(message.event)
    return events


async def test_a_sweep_trains_every_trial_as_an_operation_with_a_model(sweep_backend):
    stub = sweep_backend.stub
    created = (
        await stub.CreateSweep(
            pb.CreateSweepRequest(
                strategy_name="tiny_rsi",
                parameters=space(),
                objective="val_loss",
                n_trials=8,
                parallelism=2,
                pruner=pb.SWEEP_PRUNER_NONE,
                seed=3,
                field_overrides=FAST,
            )
        )
    ).sweep
    assert created.status == pb.SWEEP_STATUS_RUNNING
    assert created.direction == pb.OBJECTIVE_DIRECTION_MINIMIZE
    events = await watch_to_end(stub, created.sweep_id)
    assert events[0].kind == pb.SWEEP_EVENT_KIND_SNAPSHOT
    assert events[-1].kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED
    kinds = {e.kind for e in events}
    assert {pb.SWEEP_EVENT_KIND_TRIAL_STARTED, pb.SWEEP_EVENT_KIND_TRIAL_EPOCH} <= kinds
    assert pb.SWEEP_EVENT_KIND_BEST in kinds
    sweep = (await stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))).sweep
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    assert [t.number for t in sweep.trials] == list(range(8))
    assert all(t.status == pb.TRIAL_STATUS_COMPLETED for t in sweep.trials), sweep.trials
    assert sweep.best_trial.value == min(t.value for t in sweep.trials)
    assert len({t.operation_id for t in sweep.trials}) == 8
    # At most two trials trained at once.
    spans = sorted(
        (t.started_time.ToMicroseconds(), t.finished_time.ToMicroseconds()) for t in sweep.trials
    )
    for i, (start, _) in enumerate(spans):
        assert sum(1 for s, f in spans[:i] if f > start) <= 1
    models = ModelStorage(sweep_backend.settings.models_dir)
    ops = (await stub.ListOperations(pb.ListOperationsRequest())).operations
    by_id = {op.operation_id: op for op in ops}
    for trial in sweep.trials:
        op = by_id[trial.operation_id]
        assert op.status == pb.OPERATION_STATUS_COMPLETED
        assert op.sweep_id == sweep.sweep_id and op.trial_number == trial.number
        assert op.result.delivery.model.path
        assert trial.params["model.architecture.activation"] in ("relu", "tanh")
        assert 4 <= int(trial.params["model.architecture.hidden_layers[0]"]) <= 16
    assert len(models.list_models("tiny_rsi")) == 8
    listed = (await stub.ListSweeps(pb.ListSweepsRequest())).sweeps
    assert [s.sweep_id for s in listed] == [sweep.sweep_id]
    assert listed[0].trial_counts["COMPLETED"] == 8 and not listed[0].trials
    # the best trial's model carries the sweep's alias
    best_op = by_id[sweep.best_trial.operation_id]
    selector = pb.ModelSelector(strategy_name="tiny_rsi", alias=best_alias(sweep.sweep_id))
    aliased = (await stub.GetModel(pb.GetModelRequest(model=selector))).model
    assert aliased.version.version == best_op.result.delivery.model.version


async def test_the_median_pruner_stops_a_trial_in_a_bad_region(sweep_backend):
    """Random draws with seed 6 give lr 0.005, 0.005, 5.0: the third trial's first epoch is
    far worse than the median of the two before it."""
    stub = sweep_backend.stub
    # The third trial trains on after its first epoch until it is cancelled (by the pruner),
    # however loaded the machine.
    sweep_backend.trainer.hold_from = 3
    created = (
        await stub.CreateSweep(
            pb.CreateSweepRequest(
                strategy_name="tiny_rsi",
                parameters=[
                    pb.SweepParameter(
                        path="model.training.learning_rate",
                        choices=pb.Choices(values=["0.005", "5.0"]),
                    )
                ],
                n_trials=3,
                parallelism=1,
                sampler=pb.SWEEP_SAMPLER_RANDOM,
                seed=6,
                pruner_startup_trials=1,
                field_overrides=[common_pb2.FieldOverride(path="model.training.epochs", value="5")],
            )
        )
    ).sweep
    events = await watch_to_end(stub, created.sweep_id)
    pruned_events = [e for e in events if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_PRUNED]
    sweep = events[-1].sweep
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    statuses = [t.status for t in sweep.trials]
    assert statuses == [pb.TRIAL_STATUS_COMPLETED] * 2 + [pb.TRIAL_STATUS_PRUNED], sweep.trials
    bad = sweep.trials[2]
    assert bad.params["model.training.learning_rate"] == "5.0"
    assert bad.pruned_at_epoch == 1 and pruned_events[0].trial.number == 2
    op = (await stub.GetOperation(pb.GetOperationRequest(operation_id=bad.operation_id))).operation
    assert op.status == pb.OPERATION_STATUS_CANCELLED
    assert "pruned by sweep" in op.error.message and "at epoch 1" in op.error.message
    assert sweep.trial_counts["PRUNED"] == 1


async def test_cancel_midway_keeps_finished_trials(sweep_backend):
    stub = sweep_backend.stub
    sweep_backend.trainer.hold_from = 2  # the first trial finishes, the others train on
    created = (
        await stub.CreateSweep(
            pb.CreateSweepRequest(
                strategy_name="tiny_rsi",
                parameters=space(),
                n_trials=6,
                parallelism=2,
                pruner=pb.SWEEP_PRUNER_NONE,
                field_overrides=FAST,
            )
        )
    ).sweep
    # Cancel right after a trial starts that began once another had finished: that one is
    # surely mid-way (the trainer holds every run after the first until it is cancelled).
    stream = stub.WatchSweep(pb.WatchSweepRequest(sweep_id=created.sweep_id))
    finished = False
    async for message in stream:
        kind = message.event.kind
        finished = finished or kind == pb.SWEEP_EVENT_KIND_TRIAL_FINISHED
        if finished and kind == pb.SWEEP_EVENT_KIND_TRIAL_STARTED:
            break
    stream.cancel()
    answer = (
        await stub.CancelSweep(pb.CancelSweepRequest(sweep_id=created.sweep_id, reason="enough"))
    ).sweep
    # CancelSweep waits a while for the trials to stop; a loaded machine may need longer.
    assert answer.status in (pb.SWEEP_STATUS_CANCELLED, pb.SWEEP_STATUS_RUNNING)
    cancelled = (await watch_to_end(stub, created.sweep_id))[-1].sweep
    assert cancelled.status == pb.SWEEP_STATUS_CANCELLED
    assert cancelled.error.message == "enough"
    counts = cancelled.trial_counts
    trials = (await stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))).sweep.trials
    described = [(t.number, pb.TrialStatus.Name(t.status), t.error.message) for t in trials]
    assert counts["COMPLETED"] >= 1 and counts["CANCELLED"] >= 1, (dict(counts), described)
    assert len(cancelled.trials) < 6
    for trial in cancelled.trials:
        assert trial.status in (pb.TRIAL_STATUS_COMPLETED, pb.TRIAL_STATUS_CANCELLED)
        op = (
            await stub.GetOperation(pb.GetOperationRequest(operation_id=trial.operation_id))
        ).operation
        expected = (
            pb.OPERATION_STATUS_COMPLETED
            if trial.status == pb.TRIAL_STATUS_COMPLETED
            else pb.OPERATION_STATUS_CANCELLED
        )
        assert op.status == expected
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CancelSweep(pb.CancelSweepRequest(sweep_id=created.sweep_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_restarted_backend_resumes_the_sweep_without_repeating_trials(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    backend = await start_backend(tmp_path, sample_data_dir)
    try:
        created = (
            await backend.stub.CreateSweep(
                pb.CreateSweepRequest(
                    strategy_name="tiny_rsi",
                    parameters=space(),
                    n_trials=3,
                    parallelism=1,
                    pruner=pb.SWEEP_PRUNER_NONE,
                    field_overrides=FAST,
                )
            )
        ).sweep
        stream = backend.stub.WatchSweep(pb.WatchSweepRequest(sweep_id=created.sweep_id))
        async for message in stream:  # stop while trial 1 is pending or training
            e = message.event
            if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_STARTED and e.trial.number == 1:
                break
        stream.cancel()
        before = (await backend.stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))).sweep
    finally:
        await stop_backend(backend)
    finished_before = {t.number: t for t in before.trials if t.status != pb.TRIAL_STATUS_RUNNING}
    assert finished_before[0].status == pb.TRIAL_STATUS_COMPLETED

    backend = await start_backend(tmp_path, sample_data_dir)
    try:
        events = await watch_to_end(backend.stub, created.sweep_id)
        sweep = events[-1].sweep
    finally:
        await stop_backend(backend)
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    for number, trial in finished_before.items():
        assert sweep.trials[number] == trial  # kept as it was, not trained again
    completed = [t for t in sweep.trials if t.status == pb.TRIAL_STATUS_COMPLETED]
    interrupted = [t for t in sweep.trials if t.status == pb.TRIAL_STATUS_INTERRUPTED]
    assert len(completed) == 3
    assert len(interrupted) <= 1  # trial 1, unless it was still queued (then followed again)
    assert len(sweep.trials) == 3 + len(interrupted)
    assert len({t.operation_id for t in sweep.trials}) == len(sweep.trials)
    for trial in interrupted:
        assert "backend restarted" in trial.error.message


def request(**fields) -> pb.CreateSweepRequest:
    values = {"strategy_name": "tiny_rsi", "parameters": space(), "n_trials": 2, **fields}
    return pb.CreateSweepRequest(**values)


@pytest.mark.parametrize(
    ("fields", "code", "expected"),
    [
        ({"parameters": []}, "INVALID_ARGUMENT", "parameters: 1 to 32 needed, got 0"),
        (
            {
                "parameters": [
                    pb.SweepParameter(path=f"seed{i}", choices=pb.Choices(values=["1"]))
                    for i in range(33)
                ]
            },
            "INVALID_ARGUMENT",
            "parameters: 1 to 32 needed, got 33",
        ),
        ({"n_trials": 1001}, "INVALID_ARGUMENT", "KTRDR_BACKEND_SWEEP_MAX_TRIALS"),
        ({"parallelism": 17}, "INVALID_ARGUMENT", "KTRDR_BACKEND_SWEEP_MAX_PARALLELISM"),
        ({"sampler": pb.SWEEP_SAMPLER_GRID}, "INVALID_ARGUMENT", "a float_range has no grid"),
        (
            {
                "parameters": [
                    pb.SweepParameter(
                        path="model.training.learnig_rate",
                        float_range=pb.FloatRange(low=0.1, high=0.2),
                    )
                ]
            },
            "INVALID_ARGUMENT",
            "did you mean `learning_rate`",
        ),
        (
            {
                "parameters": [
                    pb.SweepParameter(
                        path="model.training.learning_rate",
                        float_range=pb.FloatRange(low=0, high=0.2, log=True),
                    )
                ]
            },
            "INVALID_ARGUMENT",
            "a log float_range needs low > 0",
        ),
        ({"strategy_name": "nope"}, "NOT_FOUND", "no strategy 'nope'"),
    ],
)
async def test_bad_sweeps_are_refused_with_the_reason(backend, fields, code, expected):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await backend.stub.CreateSweep(request(**fields))
    assert info.value.code().name == code
    assert expected in info.value.details()
    assert not (await backend.stub.ListSweeps(pb.ListSweepsRequest())).sweeps


async def test_unknown_sweeps_are_not_found(backend):
    for call, message in (
        (backend.stub.GetSweep, pb.GetSweepRequest(sweep_id="x")),
        (backend.stub.CancelSweep, pb.CancelSweepRequest(sweep_id="x")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(message)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in backend.stub.WatchSweep(pb.WatchSweepRequest(sweep_id="x")):
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_cli_and_client_run_a_sweep(sweep_backend, capsys, monkeypatch):
    from ktrdr.cli.main import main

    address = f"127.0.0.1:{sweep_backend.app.port}"
    token = (sweep_backend.settings.data_dir / "admin.token").read_text().strip()
    argv = [
        "sweep",
        "create",
        "tiny_rsi",
        "--backend",
        address,
        "--token",
        token,
        "--param",
        "model.architecture.activation=choice:relu,tanh",
        "--sampler",
        "grid",
        "--parallel",
        "2",
        "--set",
        "model.training.epochs=1",
        "--watch",
    ]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "model.architecture.activation" in out

    def listed():
        with TrainingClient(address, token=token) as client:
            sweeps = client.sweeps()
            return sweeps, client.get_sweep(sweeps[0].sweep_id)

    sweeps, sweep = await asyncio.to_thread(listed)
    assert [s.status for s in sweeps] == ["completed"]
    assert sorted(t.params["model.architecture.activation"] for t in sweep.trials) == [
        "relu",
        "tanh",
    ]
    from ktrdr.client.sweeps import trials_table

    table = trials_table(sweep.trials)
    assert list(table["status"]) == ["completed", "completed"]
    assert "val_loss" in table.columns and "model.architecture.activation" in table.columns

    # On a terminal, `sweep watch` draws the trial table (here: the snapshot of the ended sweep).
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setenv("TERM", "xterm")
    with contextlib.redirect_stdout(terminal):
        watch = ["sweep", "watch", sweep.sweep_id, "--backend", address, "--token", token]
        assert await asyncio.to_thread(main, watch) == 0
    drawn = terminal.getvalue()
    assert "\x1b[J" in drawn and "2/2 trials done" in drawn
    assert "relu" in drawn and "tanh" in drawn and "VAL_LOSS" in drawn


async def test_a_sweep_with_a_value_its_trials_would_refuse_is_refused_at_once(backend):
    """Every choice (and both ends of every range) is checked against the strategy when the
    sweep is created: dropout 2.0 is refused there, not trial after trial."""
    parameter = pb.SweepParameter(
        path="model.architecture.dropout", choices=pb.Choices(values=["0.1", "2.0", "3.0"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await backend.stub.CreateSweep(
            pb.CreateSweepRequest(
                strategy_name="tiny_rsi",
                parameters=[parameter],
                n_trials=20,
                sampler=pb.SWEEP_SAMPLER_RANDOM,
                seed=0,
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model.architecture.dropout=2.0" in (refused.value.details() or "")


async def test_list_sweeps_pages_through_every_sweep_once(backend):
    """ListSweeps hands out pages with a token (the 500 cap is per page, not a ceiling on
    what can be listed); a token that is not one is INVALID_ARGUMENT."""
    assert backend.app.sweeps is not None
    store = backend.app.sweeps.store
    ids = [f"sweep{i:02d}" for i in range(7)]
    for i, sweep_id in enumerate(ids):  # two share a creation time: the id breaks the tie
        await store.insert_sweep.aio(
            SweepRecord(
                id=sweep_id,
                status=pb.SWEEP_STATUS_COMPLETED if i % 2 else pb.SWEEP_STATUS_CANCELLED,
                strategy_name="tiny_rsi",
                request=request(),
                owner="admin",
                owner_role="admin",
                created_us=1_000 + min(i, 5),
                finished_us=2_000,
            )
        )
    seen, token, pages = [], "", 0
    while True:
        page = await backend.stub.ListSweeps(pb.ListSweepsRequest(page_size=3, page_token=token))
        seen += [s.sweep_id for s in page.sweeps]
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3
    done = await backend.stub.ListSweeps(
        pb.ListSweepsRequest(status=pb.SWEEP_STATUS_COMPLETED, page_size=2)
    )
    rest = await backend.stub.ListSweeps(
        pb.ListSweepsRequest(
            status=pb.SWEEP_STATUS_COMPLETED, page_size=2, page_token=done.next_page_token
        )
    )
    assert [s.sweep_id for s in [*done.sweeps, *rest.sweeps]] == ["sweep05", "sweep03", "sweep01"]
    assert not rest.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await backend.stub.ListSweeps(pb.ListSweepsRequest(page_token="not-a-token"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in info.value.details()
    port = backend.app.port
    token_text = (backend.settings.data_dir / "admin.token").read_text().strip()
    with TrainingClient(f"127.0.0.1:{port}", token=token_text) as client:
        listed = await asyncio.to_thread(client.sweeps, limit=0)
        assert [s.sweep_id for s in listed] == sorted(ids, reverse=True)
        assert len(await asyncio.to_thread(client.sweeps, limit=4)) == 4


async def test_a_trial_that_trains_before_it_is_recorded_keeps_its_objective(
    sweep_backend, monkeypatch
):
    """A one-epoch trial may finish while the sweep is still writing the trial's row; its
    epoch metrics (``val_loss``, the objective) must not be missed by a follow-up that
    subscribed after that write (seen beside a second suite: "objective 'val_loss' not in
    the result"). The row write is slowed here so that every trial finishes first."""
    sweep_backend.trainer.epoch_s = 0.0
    written = SweepStore.put_trial.fn

    def slow_put_trial(self: SweepStore, db: sqlite3.Connection, trial: TrialRecord) -> None:
        if trial.operation_id and trial.status == pb.TRIAL_STATUS_RUNNING:
            time.sleep(0.5)  # the recording of a started trial, not a synchronisation
        written(self, db, trial)

    monkeypatch.setattr(SweepStore, "put_trial", writes(slow_put_trial))
    created = (
        await sweep_backend.stub.CreateSweep(
            pb.CreateSweepRequest(
                strategy_name="tiny_rsi",
                parameters=space(),
                n_trials=2,
                parallelism=1,
                field_overrides=FAST,
            )
        )
    ).sweep
    done = (await watch_to_end(sweep_backend.stub, created.sweep_id))[-1].sweep
    trials = (
        await sweep_backend.stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))
    ).sweep.trials
    described = [(t.number, pb.TrialStatus.Name(t.status), t.error.message) for t in trials]
    assert done.status == pb.SWEEP_STATUS_COMPLETED, described
    assert done.trial_counts["COMPLETED"] == 2, described
