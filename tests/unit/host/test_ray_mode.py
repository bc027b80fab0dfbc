"""Ray mode's pieces that need no cluster: settings, the cluster's description, admission and
the relay's bound (that nothing imports Ray unless Ray mode is on, in child interpreters:
``tests/integration/host/test_ray_mode.py``)."""

from __future__ import annotations

from collections import deque

import grpc
import pytest
from pydantic import ValidationError

from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr_host.ray.cluster import ClusterView, RayCluster, nodes_from_ray
from ktrdr_host.settings import HostSettings

NODES = [
    {
        "NodeID": "b" * 56,
        "Alive": True,
        "NodeManagerAddress": "10.0.0.3",
        "Resources": {"CPU": 8.0, "GPU": 2.0, "accelerator_type:H100": 1.0, "memory": 1e10},
    },
    {
        "NodeID": "a" * 56,
        "Alive": True,
        "NodeManagerAddress": "10.0.0.2",
        "Resources": {"CPU": 3.0, "node:__internal_head__": 1.0},
    },
    {"NodeID": "c" * 56, "Alive": False, "NodeManagerAddress": "10.0.0.4", "Resources": {}},
]


@pytest.mark.parametrize("address", ["", "auto", "127.0.0.2:6379", "ray://head.example:10001"])
def test_ray_addresses_accepted(address: str) -> None:
    assert HostSettings(ray_address=address).ray_address == address


@pytest.mark.parametrize("address", ["head", "ray://head", "127.0.0.2:port", ":6379"])
def test_ray_addresses_refused_with_the_forms_that_work(address: str) -> None:
    with pytest.raises(ValidationError, match="'auto', 'HOST:PORT' or 'ray://HOST:PORT'"):
        HostSettings(ray_address=address)


def test_ray_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_HOST_RAY_ADDRESS", "auto")
    monkeypatch.setenv("KTRDR_HOST_RAY_CPUS_PER_SESSION", "2")
    monkeypatch.setenv("KTRDR_HOST_RAY_MAX_QUEUED", "0")
    monkeypatch.setenv("KTRDR_HOST_RAY_TASK_RETRIES", "3")
    settings = HostSettings()
    assert settings.ray_address == "auto"
    assert (settings.ray_cpus_per_session, settings.ray_max_queued) == (2.0, 0)
    assert settings.ray_task_retries == 3
    with pytest.raises(ValidationError, match="ray_cpus_per_session"):
        HostSettings(ray_cpus_per_session=0)


def test_live_nodes_head_first_with_their_resources() -> None:
    nodes = nodes_from_ray(NODES)
    assert [(n.address, n.cpus, n.gpus, n.gpu_kind, n.head) for n in nodes] == [
        ("10.0.0.2", 3.0, 0.0, "", True),
        ("10.0.0.3", 8.0, 2.0, "H100", False),
    ]
    view = ClusterView(nodes, reachable=True)
    assert (view.cpus, view.gpus) == (11.0, 2.0)
    assert view.slots(1.0) == 11
    assert view.slots(2.0) == 1 + 4  # whole sessions per node: 3 CPUs hold one of 2
    assert nodes[0].label == f"10.0.0.2 (node {'a' * 12})"


def test_admission_follows_the_cluster() -> None:
    cluster = RayCluster(HostSettings(ray_address="auto", ray_max_queued=2))
    refusal = cluster.refusal(0)
    assert refusal is not None and refusal[0] == grpc.StatusCode.UNAVAILABLE  # never seen
    cluster.view = ClusterView(nodes_from_ray(NODES), reachable=True)
    assert cluster.capacity == 11 + 2 and cluster.refusal(12) is None
    code, message = cluster.refusal(13) or (None, "")
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "KTRDR_HOST_RAY_MAX_QUEUED" in message
    cluster.counts.change(node="a" * 56, running=2)
    cluster.counts.change(queued=1)
    info = cluster.to_proto()
    assert (info.node_count, info.cpus, info.running_sessions, info.queued_sessions) == (
        2,
        11.0,
        2,
        1,
    )
    assert info.free_slots == 9 and [n.running_sessions for n in info.nodes] == [2, 0]
    cluster.counts.change(node="a" * 56, running=-2)
    assert cluster.to_proto().running_sessions == 0 and not cluster.counts.running


def test_relay_drops_batch_events_first() -> None:
    pytest.importorskip("ray", reason="Ray is not installed")
    from ktrdr_host.ray.task import _drop_one

    queue = deque(
        [
            ProgressEvent(ProgressKind.STEP_STARTED, step=8),
            ProgressEvent(ProgressKind.BATCH, batch=1),
            ProgressEvent(ProgressKind.EPOCH, epoch=1),
        ]
    )
    _drop_one(queue)
    assert [e.kind for e in queue] == [ProgressKind.STEP_STARTED, ProgressKind.EPOCH]
    _drop_one(queue)
    assert [e.kind for e in queue] == [ProgressKind.EPOCH]


def test_a_dead_worker_after_its_retries_fails_naming_the_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed")
    from ktrdr.errors import WorkerDied
    from ktrdr_host.ray.executor import RayExecutor

    def dead(ref: object, timeout: float | None = None) -> None:
        raise ray.exceptions.WorkerCrashedError()

    monkeypatch.setattr(ray, "get", dead)
    executor = RayExecutor(RayCluster(HostSettings(ray_address="auto", ray_task_retries=2)), "cpu")
    executor.node_label = "10.0.0.3 (node bbbbbbbbbbbb)"
    with pytest.raises(WorkerDied) as died:
        executor._outcome(object(), None)
    message = str(died.value)
    assert "on 10.0.0.3 (node bbbbbbbbbbbb) died before finishing (WorkerCrashedError" in message
    assert "tried 3 time(s) (KTRDR_HOST_RAY_TASK_RETRIES=2)" in message
