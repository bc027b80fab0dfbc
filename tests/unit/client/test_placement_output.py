"""What users see of host placement: the chosen host, the queue while waiting, a fallback."""

from __future__ import annotations

import pytest

from ktrdr.cli.client_commands import _print_operation, placement_line
from ktrdr.client.records import OperationInfo
from ktrdr.client.results import TrainingResult
from ktrdr.training.v1 import backend_pb2 as pb

HOST, LOCAL = pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_LOCAL


def info(**fields: object) -> OperationInfo:
    base: dict[str, object] = dict(
        operation_id="op-1",
        status=pb.OPERATION_STATUS_PENDING,
        strategy_name="rsi",
        requested_mode=HOST,
        mode=HOST,
    )
    return OperationInfo.from_proto(pb.Operation(**{**base, **fields}))


def test_queued_operation_says_where_it_stands():
    op = info(
        mode_reason="host: queued, 3 hosts busy (a 2/2 sessions; b 2/2; c 2/2)",
        queue_reason="3 hosts busy, 2 queued (this one 2nd)",
        queue_position=2,
    )
    assert placement_line(op) == (
        "operation op-1: pending, mode host, queued for a host slot, position 2: "
        "3 hosts busy, 2 queued (this one 2nd) (host: queued, 3 hosts busy (a 2/2 sessions; "
        "b 2/2; c 2/2))"
    )
    assert op.placement == "queued for a host (3 hosts busy, 2 queued (this one 2nd))"
    assert op.to_dict()["queue_position"] == 2


def test_placed_operation_names_its_host():
    op = info(host_address="10.0.0.5:50051", mode_reason="host: host 10.0.0.5:50051 is healthy")
    assert placement_line(op) == (
        "operation op-1: pending, mode host on host 10.0.0.5:50051 "
        "(host: host 10.0.0.5:50051 is healthy)"
    )
    assert op.placement == "host 10.0.0.5:50051"


def test_fallback_is_a_warning(capsys: pytest.CaptureFixture[str]):
    op = info(mode=LOCAL, fallback=True, mode_reason="host: fell back to local, no host healthy")
    line = placement_line(op)
    assert line.startswith("warning: operation op-1: pending, mode local: runs LOCALLY")
    assert op.to_dict()["fallback"] is True
    _print_operation(op)
    out = capsys.readouterr().out
    assert "placement    local (FALLBACK from host mode" in out


def test_ops_show_prints_the_queue(capsys: pytest.CaptureFixture[str]):
    _print_operation(info(queue_reason="1 host busy, 1 queued (this one 1st)", queue_position=1))
    out = capsys.readouterr().out
    assert "queue        position 1: 1 host busy, 1 queued (this one 1st)" in out
    assert "host         - (waiting for a slot)" in out


def test_train_result_shows_the_host_or_the_fallback(capsys: pytest.CaptureFixture[str]):
    from ktrdr.cli.client_commands import _print_result

    done = dict(status=pb.OPERATION_STATUS_COMPLETED)
    _print_result(TrainingResult(info(host_address="h:1", mode_reason="host: host h:1", **done)))
    out = capsys.readouterr().out
    assert "rsi: trained on ? on host h:1 in" in out and "  placed: host: host h:1" in out
    fell = info(mode=LOCAL, fallback=True, mode_reason="host: fell back to local", **done)
    _print_result(TrainingResult(fell))
    out = capsys.readouterr().out
    assert "LOCALLY in the backend (fallback from host mode)" in out
    assert "  warning: host: fell back to local" in out
