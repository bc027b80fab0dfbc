"""The host registry's state machine, on an injected clock (no sleeping, no servers)."""

from __future__ import annotations

import logging

import grpc
import pytest

from ktrdr.backend.errors import RequestError
from ktrdr.backend.execution.host_rpcs import HostRpcs
from ktrdr.backend.execution.mode_selector import ModeSelector
from ktrdr.backend.execution.registry import (
    AVAILABLE,
    UNAVAILABLE,
    HostRegistry,
    Lost,
    check_address,
    check_host_id,
    check_versions,
)
from ktrdr.backend.store import OperationRecord, Store, now_us
from ktrdr.service.convert import simple_event
from ktrdr.service.host_protocol import PROTOCOL_VERSION
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2, host_pb2, hosts_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry(clock: Clock, **kw: object) -> HostRegistry:
    options: dict = dict(heartbeat_interval_s=1.0, heartbeat_timeout_s=3.0, removal_after_s=10.0)
    options.update(kw)
    return HostRegistry(["10.0.0.9:50051"], clock=clock, wall=clock, **options)


def join(reg: HostRegistry, host_id: str = "gpu-1", address: str = "127.0.0.1:6001", **kw):
    options: dict = dict(instance_id="i1", version="0.1.0", held=())
    options.update(kw)
    caps = host_pb2.GetCapabilitiesResponse(max_sessions=2)
    return reg.register(host_id=host_id, address=address, capabilities=caps, **options)


def test_a_registered_host_is_placed_after_the_static_ones_and_wakes_listeners():
    clock = Clock()
    reg = registry(clock)
    woken: list[str] = []
    reg.on_available.append(lambda host: woken.append(host.host_id))
    assert reg.addresses() == ["10.0.0.9:50051"]
    join(reg)
    assert reg.addresses() == ["10.0.0.9:50051", "127.0.0.1:6001"]
    assert woken == ["gpu-1"]


def test_missed_heartbeats_make_a_host_unavailable_then_removed(caplog):
    clock = Clock()
    reg = registry(clock)
    lost: list[Lost] = []
    reg.on_lost.append(lost.append)
    join(reg)
    caplog.set_level(logging.INFO, logger="ktrdr.backend.execution.registry")
    clock.now += 2.9
    reg.sweep()
    assert reg.get("gpu-1").state == AVAILABLE  # within the lease
    clock.now += 0.2
    reg.sweep()
    host = reg.get("gpu-1")
    assert host.state == UNAVAILABLE and "no heartbeat for 3.1 s" in host.detail
    assert reg.addresses() == ["10.0.0.9:50051"]  # no new work there
    assert "host gpu-1 (127.0.0.1:6001): available -> unavailable" in caplog.text
    assert lost == []
    clock.now += 7.0  # 10.1 s silent
    reg.sweep()
    assert reg.get("gpu-1") is None
    assert len(lost) == 1 and lost[0].addresses == {"127.0.0.1:6001"} and not lost[0].kept
    assert "sent no heartbeat for 10.1 s and was removed" in lost[0].cause
    assert "unavailable -> removed" in caplog.text


def test_a_heartbeat_brings_an_unavailable_host_back_and_wakes_the_queue():
    clock = Clock()
    reg = registry(clock)
    join(reg)
    woken: list[str] = []
    reg.on_available.append(lambda host: woken.append(host.host_id))
    clock.now += 5
    reg.sweep()
    assert reg.heartbeat("gpu-1", "i1", 1) is not None
    assert reg.get("gpu-1").state == AVAILABLE and reg.get("gpu-1").active_sessions == 1
    assert woken == ["gpu-1"]


def test_an_unknown_host_or_instance_must_register_again():
    clock = Clock()
    reg = registry(clock)
    assert reg.heartbeat("gpu-1", "i1", 0) is None  # e.g. after a backend restart
    join(reg)
    assert reg.heartbeat("gpu-1", "another", 0) is None


def test_a_leaving_host_gets_no_new_work_at_once():
    clock = Clock()
    reg = registry(clock)
    join(reg)
    reg.heartbeat("gpu-1", "i1", 0, leaving=True)
    assert reg.get("gpu-1").state == UNAVAILABLE and reg.get("gpu-1").detail == "left"
    assert reg.addresses() == ["10.0.0.9:50051"]


def test_a_restarted_host_loses_the_sessions_it_does_not_list_at_both_addresses():
    clock = Clock()
    reg = registry(clock)
    lost: list[Lost] = []
    reg.on_lost.append(lost.append)
    join(reg)
    join(reg, instance_id="i1")  # the same process again (backend restart): nothing lost
    assert lost == []
    join(reg, address="127.0.0.1:6002", instance_id="i2", held=["op-spooled"])
    assert len(lost) == 1
    assert lost[0].addresses == {"127.0.0.1:6001", "127.0.0.1:6002"}
    assert lost[0].kept == {"op-spooled"} and "restarted" in lost[0].cause
    assert reg.addresses() == ["10.0.0.9:50051", "127.0.0.1:6002"]


def test_one_host_per_address_and_a_bounded_number_of_hosts():
    clock = Clock()
    reg = registry(clock, max_hosts=2)
    join(reg, "a", "127.0.0.1:6001")
    join(reg, "b", "127.0.0.1:6001")  # a new id at the same address replaces the old one
    assert [h.host_id for h in reg.hosts()] == ["b"]
    join(reg, "c", "127.0.0.1:6003")
    with pytest.raises(RequestError) as refused:
        join(reg, "d", "127.0.0.1:6004")
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "KTRDR_BACKEND_MAX_REGISTERED_HOSTS" in refused.value.message
    join(reg, "c", "127.0.0.1:6003")  # a known host may always register again


def test_next_check_wakes_in_time_for_the_first_timeout():
    clock = Clock()
    reg = registry(clock)
    assert reg.next_check_s() == pytest.approx(1.01)  # nothing registered: the interval
    join(reg)
    clock.now += 2.5
    assert reg.next_check_s() == pytest.approx(0.51)


@pytest.mark.parametrize(
    ("address", "allowed", "code"),
    [
        ("127.0.0.1:6001", [], None),
        ("localhost:6001", [], None),
        ("10.0.0.5:6001", [], grpc.StatusCode.PERMISSION_DENIED),
        ("10.0.0.5:6001", ["10.0.0.0/8"], None),
        ("gpu.example.org:6001", ["gpu.example.org"], None),
        ("gpu.example.org:6001", ["*"], None),
        ("gpu.example.org:6002", ["gpu.example.org:6001"], grpc.StatusCode.PERMISSION_DENIED),
        ("127.0.0.1", [], grpc.StatusCode.INVALID_ARGUMENT),
        ("127.0.0.1:0", [], grpc.StatusCode.INVALID_ARGUMENT),
        ("dns:///evil:1", ["*"], grpc.StatusCode.INVALID_ARGUMENT),
        ("a" * 300 + ":1", ["*"], grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_addresses_are_checked_against_the_allow_list(address, allowed, code):
    if code is None:
        assert check_address(address, allowed) == address
        return
    with pytest.raises(RequestError) as refused:
        check_address(address, allowed)
    assert refused.value.code == code


def test_versions_must_match_in_one_line_naming_both():
    check_versions("gpu-1", "0.1.7", PROTOCOL_VERSION, "0.1.0")  # a patch may differ
    with pytest.raises(RequestError) as refused:
        check_versions("gpu-1", "0.1.0", PROTOCOL_VERSION + 1, "0.1.0")
    message = refused.value.message
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION and "\n" not in message
    assert f"protocol {PROTOCOL_VERSION + 1}, this backend {PROTOCOL_VERSION}" in message
    with pytest.raises(RequestError) as refused:
        check_versions("gpu-1", "0.2.0", PROTOCOL_VERSION, "0.1.0")
    assert "ktrdr 0.2.0, this backend ktrdr 0.1.0" in refused.value.message


def test_host_ids_are_bounded_and_plain():
    assert check_host_id("gpu-1.lab:a_b") == "gpu-1.lab:a_b"
    for bad in ("", "a b", "x" * 129, "naïve", "a/b"):
        with pytest.raises(RequestError):
            check_host_id(bad)


def record(op_id: str) -> OperationRecord:
    return OperationRecord(
        id=op_id,
        status=pb.OPERATION_STATUS_PENDING,
        strategy_name="s",
        strategy_yaml="name: s",
        overrides=common_pb2.TrainingOverrides(),
        requested_mode=0,
        mode=pb.EXECUTION_MODE_HOST,
        mode_reason="host: test",
        host_address="127.0.0.1:6001",
        require_gpu=False,
        created_us=now_us(),
        last_event=simple_event(ProgressKind.ACCEPTED, "accepted"),
    )


async def test_the_sessions_a_host_should_stop_are_those_ended_or_unknown_here(tmp_path):
    store = Store(tmp_path / "b.db")
    for op_id in ("running", "cancelled"):
        await store.insert_operation.aio(record(op_id))
    await store.mark_running.aio("running")
    await store.finish.aio(
        "cancelled", pb.OPERATION_STATUS_CANCELLED, simple_event(ProgressKind.CANCELLED, "x")
    )
    rpcs = HostRpcs()
    rpcs.setup_host_rpcs(HostRegistry(), store, ModeSelector([]), lambda: "127.0.0.1:50052")
    held = [
        hosts_pb2.HeldSession(session_id=s, results_target="127.0.0.1:50052")
        for s in ("running", "cancelled", "never-made-here")
    ]
    held.append(hosts_pb2.HeldSession(session_id="other", results_target="10.0.0.1:50052"))
    stops = {s.session_id: s.reason for s in await rpcs._to_stop(held)}
    assert stops == {
        "cancelled": "operation is CANCELLED on the backend",
        "never-made-here": "unknown to the backend",
    }  # a running one stays; another backend's session is not judged here
