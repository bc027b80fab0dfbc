"""Sweeps whose trials train on a real host process (the session's backend and host).

The strategy is the tiny one renamed ``tiny_sweep``, so the session's other tests, which count
``tiny_rsi`` models, see none of these. The session's host has one session slot: with
parallelism 2 the second trial waits in the backend's host queue while the first trains.
"""

from __future__ import annotations

import itertools
import time

import pytest

from ktrdr.backend.sweeps.runner import best_alias
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2, host_pb2
from tests.support.needs import needs
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, needs("optuna")]

HOST = pb.EXECUTION_MODE_HOST
DEADLINE_S = scaled(300)  # generous: the suite may run beside another copy of itself


def sweep_yaml(tiny_strategy_yaml: str) -> str:
    return tiny_strategy_yaml.replace("name: tiny_rsi", "name: tiny_sweep", 1)


def epochs(n: int) -> list[common_pb2.FieldOverride]:
    return [common_pb2.FieldOverride(path="model.training.epochs", value=str(n))]


def run_sweep(stub, request: pb.CreateSweepRequest) -> tuple[pb.Sweep, list[pb.SweepEvent]]:
    created = stub.CreateSweep(request, timeout=scaled(30)).sweep
    assert created.status == pb.SWEEP_STATUS_RUNNING
    assert created.execution_mode == HOST
    watch = pb.WatchSweepRequest(sweep_id=created.sweep_id)
    events = [m.event for m in stub.WatchSweep(watch, timeout=DEADLINE_S)]
    assert events[-1].kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED, events[-1]
    return events[-1].sweep, events


def operation(stub, operation_id: str) -> pb.Operation:
    request = pb.GetOperationRequest(operation_id=operation_id)
    return stub.GetOperation(request, timeout=scaled(10)).operation


def session_when_settled(host_stub, session_id: str) -> host_pb2.Session:
    """The host's session once it has finished (and, if it completed, its model delivered):
    the backend may report first, the host records the outcome a moment later."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        session = host_stub.GetSession(
            host_pb2.GetSessionRequest(session_id=session_id), timeout=scaled(10)
        ).session
        delivered = session.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED
        finished = session.state in (
            host_pb2.SESSION_STATE_CANCELLED,
            host_pb2.SESSION_STATE_FAILED,
        ) or (session.state == host_pb2.SESSION_STATE_COMPLETED and delivered)
        if finished or time.monotonic() > deadline:
            return session
        time.sleep(0.05)


def test_a_sweep_trains_its_trials_on_the_host(
    backend_stub, host_stub, host_process, tiny_strategy_yaml
):
    sweep, events = run_sweep(
        backend_stub,
        pb.CreateSweepRequest(
            strategy_yaml=sweep_yaml(tiny_strategy_yaml),
            parameters=[
                pb.SweepParameter(
                    path="model.training.learning_rate",
                    float_range=pb.FloatRange(low=1e-3, high=1e-1, log=True),
                ),
                pb.SweepParameter(
                    path="model.architecture.activation",
                    choices=pb.Choices(values=["relu", "tanh"]),
                ),
            ],
            objective="val_loss",
            n_trials=3,
            parallelism=2,
            pruner=pb.SWEEP_PRUNER_NONE,
            seed=5,
            execution_mode=HOST,
            field_overrides=epochs(2),
        ),
    )
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    assert [t.status for t in sweep.trials] == [pb.TRIAL_STATUS_COMPLETED] * 3, sweep.trials
    epoch_events = [e for e in events if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_EPOCH]
    sessions = []
    for trial in sweep.trials:
        op = operation(backend_stub, trial.operation_id)
        assert op.status == pb.OPERATION_STATUS_COMPLETED, op
        assert op.mode == HOST and op.requested_mode == HOST, op.mode_reason
        assert op.host_address == host_process.address
        assert host_process.address in op.mode_reason
        assert op.sweep_id == sweep.sweep_id and op.trial_number == trial.number
        # the model came from the host through SubmitResults, and the host saw it acknowledged
        delivery = op.result.delivery
        assert delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED
        assert delivery.model.strategy_name == "tiny_sweep" and delivery.model.version
        assert f"delivered by host {host_process.address}" in op.last_event.message
        session = session_when_settled(host_stub, trial.operation_id)
        assert session.state == host_pb2.SESSION_STATE_COMPLETED
        assert session.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED, session
        assert session.result.delivery.model.version == delivery.model.version
        sessions.append((op, session))
        # the host's epochs reached the sweep: both of them, with the metric the pruner reads
        mine = [e for e in epoch_events if e.trial.number == trial.number]
        assert [e.epoch for e in mine] == [1, 2], mine
        assert all("val_loss" in e.metrics for e in mine)
        assert trial.last_epoch == 2 and trial.value == trial.metrics["val_loss"]
    # Two trials were created at once, the host has one slot: the second waited in the
    # backend's host queue, and the host never trained two sessions at once.
    (_, first), (second_op, _) = sessions[0], sessions[1]
    assert second_op.created_time.ToDatetime() < first.finished_time.ToDatetime()
    spans = sorted((s.created_time.ToDatetime(), s.finished_time.ToDatetime()) for _, s in sessions)
    for (_, finished), (created, _) in itertools.pairwise(spans):
        assert finished <= created, spans
    versions = {
        v.version
        for s in backend_stub.ListModels(
            pb.ListModelsRequest(strategy_name="tiny_sweep"), timeout=scaled(10)
        ).strategies
        for v in s.versions
        if v.operation_id in {t.operation_id for t in sweep.trials}
    }
    assert len(versions) == 3
    best = operation(backend_stub, sweep.best_trial.operation_id)
    selector = pb.ModelSelector(strategy_name="tiny_sweep", alias=best_alias(sweep.sweep_id))
    aliased = backend_stub.GetModel(pb.GetModelRequest(model=selector), timeout=scaled(10)).model
    assert aliased.version.version == best.result.delivery.model.version
    assert sweep.best_trial.value == min(t.value for t in sweep.trials)


def test_the_median_pruner_stops_a_trial_on_the_host(backend_stub, host_stub, tiny_strategy_yaml):
    """Random draws with seed 41 give (lr 0.005, 2 epochs), then (lr 5.0, 30 epochs): the second
    trial's first epoch is far worse than the first trial's, so the backend cancels its host
    session with 29 epochs to go, and the host stops training (no model, CANCELLED)."""
    sweep, events = run_sweep(
        backend_stub,
        pb.CreateSweepRequest(
            strategy_yaml=sweep_yaml(tiny_strategy_yaml),
            parameters=[
                pb.SweepParameter(
                    path="model.training.learning_rate",
                    choices=pb.Choices(values=["0.005", "5.0"]),
                ),
                pb.SweepParameter(
                    path="model.training.epochs", choices=pb.Choices(values=["2", "30"])
                ),
            ],
            n_trials=2,
            parallelism=1,
            sampler=pb.SWEEP_SAMPLER_RANDOM,
            seed=41,
            pruner_startup_trials=1,
            execution_mode=HOST,
        ),
    )
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    statuses = [t.status for t in sweep.trials]
    assert statuses == [pb.TRIAL_STATUS_COMPLETED, pb.TRIAL_STATUS_PRUNED], sweep.trials
    assert sweep.trials[0].params == {
        "model.training.learning_rate": "0.005",
        "model.training.epochs": "2",
    }
    bad = sweep.trials[1]
    assert bad.params == {"model.training.learning_rate": "5.0", "model.training.epochs": "30"}
    assert bad.pruned_at_epoch == 1
    assert [e.trial.number for e in events if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_PRUNED] == [1]
    op = operation(backend_stub, bad.operation_id)
    assert op.mode == HOST and op.status == pb.OPERATION_STATUS_CANCELLED, op
    assert "pruned by sweep" in op.error.message and "at epoch 1" in op.error.message
    assert not op.result.delivery.model.version
    session = session_when_settled(host_stub, bad.operation_id)
    assert session.state == host_pb2.SESSION_STATE_CANCELLED, session
    assert "pruned by sweep" in session.error.message
    assert not session.HasField("result")  # stopped before its model: nothing spooled
    models = backend_stub.ListModels(
        pb.ListModelsRequest(strategy_name="tiny_sweep"), timeout=scaled(10)
    ).strategies
    assert bad.operation_id not in {v.operation_id for s in models for v in s.versions}
