"""The host's Ray cluster: connecting, describing it, admitting sessions, watching its health.

``RayCluster`` is the host's one handle on the cluster (Ray mode, ``KTRDR_HOST_RAY_ADDRESS``).
It connects this process as a Ray driver, starts the host's ``ProgressRelay`` actor, keeps
the last view of the cluster's live nodes (refreshed every ``ray_health_interval_s`` by
``watch``, which also sets the host's health: NOT_SERVING while the cluster cannot be
reached), counts this host's sessions per node, and makes the executors (``RayExecutor``)
that the session registry asks for.

Ray is imported here and only here (and in the modules it loads), so the host, library and
client import without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from ktrdr.training.v1 import host_pb2

if TYPE_CHECKING:
    from ktrdr.service.server import Health
    from ktrdr_host.ray.executor import RayExecutor
    from ktrdr_host.settings import HostSettings

logger = logging.getLogger(__name__)

DESCRIBE_TIMEOUT_S = 10.0  # a cluster that does not list its nodes this fast is unreachable
RECONNECT_TIMEOUT_S = 1800  # how long the host, a Ray driver, survives a cluster outage


class RayUnavailable(RuntimeError):
    """Ray mode was asked for but Ray is not installed or the cluster cannot be joined."""


@dataclass(frozen=True)
class NodeView:
    """One live node as the cluster reports it."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    gpu_kind: str = ""
    head: bool = False

    @property
    def label(self) -> str:
        return f"{self.address} (node {self.node_id[:12]})"


@dataclass(frozen=True)
class ClusterView:
    """The cluster's live nodes at one moment."""

    nodes: tuple[NodeView, ...] = ()
    reachable: bool = False

    @property
    def cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.nodes)

    def slots(self, cpus_per_session: float) -> int:
        """Sessions that fit at once: whole sessions per node, summed over the nodes."""
        return sum(math.floor(n.cpus / cpus_per_session + 1e-9) for n in self.nodes)

    def node(self, node_id: str) -> NodeView | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)


def node_entries(timeout_s: float) -> list[dict[str, Any]]:
    """The cluster's nodes, shaped as ``ray.nodes()`` entries, from the driver's GCS client
    with a timeout. Not ``ray.nodes()`` itself: it goes through Ray's GlobalStateAccessor,
    whose internal check aborts the whole process (the host) when the GCS stops during the
    call (seen with Ray 2.60 when the head node is stopped); the GCS client raises instead."""
    import ray
    from ray._private.worker import global_worker
    from ray.core.generated import gcs_pb2

    client = getattr(global_worker, "gcs_client", None)
    if client is None or not hasattr(client, "get_all_node_info"):
        return list(ray.nodes())
    alive = gcs_pb2.GcsNodeInfo.ALIVE  # type: ignore[attr-defined]
    return [
        {
            "NodeID": node_id.hex(),
            "Alive": info.state == alive,
            "NodeManagerAddress": info.node_manager_address,
            "Resources": dict(info.resources_total),
        }
        for node_id, info in client.get_all_node_info(timeout=timeout_s).items()
    ]


def nodes_from_ray(entries: list[dict[str, Any]]) -> tuple[NodeView, ...]:
    """``ray.nodes()`` entries -> the live nodes."""
    nodes = []
    for entry in entries:
        if not entry.get("Alive"):
            continue
        resources: dict[str, float] = entry.get("Resources") or {}
        kinds = [k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")]
        nodes.append(
            NodeView(
                node_id=str(entry.get("NodeID", "")),
                address=str(entry.get("NodeManagerAddress", "")),
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
                gpu_kind=",".join(sorted(kinds)),
                head="node:__internal_head__" in resources,
            )
        )
    return tuple(sorted(nodes, key=lambda n: (not n.head, n.address, n.node_id)))


@dataclass
class SessionCounts:
    """This host's Ray sessions: queued, and running per node (thread-safe)."""

    queued: int = 0
    running: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def change(self, *, queued: int = 0, node: str = "", running: int = 0) -> None:
        with self.lock:
            self.queued += queued
            if node:
                self.running[node] += running
                if self.running[node] <= 0:
                    del self.running[node]

    @property
    def total_running(self) -> int:
        with self.lock:
            return sum(self.running.values())


class RayCluster:
    """The host's connection to its Ray cluster (see the module docstring)."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.address = settings.ray_address
        self.view = ClusterView()
        self.counts = SessionCounts()
        self.relay: Any = None
        self._probe_running = False
        self._unreachable_since: float | None = None

    # -- connecting ----------------------------------------------------------------------
    def connect(self) -> None:
        """Join the cluster as a driver and start the relay; raises ``RayUnavailable``."""
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailable(
                "KTRDR_HOST_RAY_ADDRESS is set but Ray is not installed; "
                "install the extra: pip install 'ktrdr[training,ray]'"
            ) from exc
        from ktrdr_host.ray.task import ProgressRelay

        # The driver's core worker ends its process once the cluster has been gone this long
        # (Ray's default: 60 s); the host should outlive a cluster outage, its spool delivers
        # regardless. Measured here: 2000 s holds, while values above ~2147 s (a microsecond
        # count past 2**31) end the process after a minute anyway.
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(RECONNECT_TIMEOUT_S))
        kwargs: dict[str, Any] = {
            "address": self.address,
            "namespace": "ktrdr-host",
            "logging_level": logging.WARNING,
            "log_to_driver": False,
        }
        if self.settings.ray_node_ip_address and not self.address.startswith("ray://"):
            kwargs["_node_ip_address"] = self.settings.ray_node_ip_address
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise RayUnavailable(
                f"cannot join the Ray cluster at {self.address!r}: {type(exc).__name__}: {exc}"
            ) from exc
        options: dict[str, Any] = {"name": f"ktrdr-host-relay-{uuid.uuid4().hex[:12]}"}
        with contextlib.suppress(Exception):  # beside the driver when it is a node itself
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            if here:
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=True)
        self.relay = ProgressRelay.options(**options).remote()  # type: ignore[attr-defined]
        self.refresh()
        logger.info(
            "joined the Ray cluster at %s: %d node(s), %.0f CPU(s), %.0f GPU(s)",
            self.address,
            len(self.view.nodes),
            self.view.cpus,
            self.view.gpus,
        )

    def close(self) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()

    # -- describing ----------------------------------------------------------------------
    def refresh(self) -> ClusterView:
        """Ask the cluster for its nodes (blocking); raises when it cannot be reached."""
        self.view = ClusterView(nodes_from_ray(node_entries(DESCRIBE_TIMEOUT_S)), reachable=True)
        self._unreachable_since = None
        return self.view

    def unreachable_for(self) -> float:
        """Seconds the cluster has been unreachable (0 while it answers)."""
        since = self._unreachable_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def free_slots(self) -> int:
        slots = self.view.slots(self.settings.ray_cpus_per_session)
        return max(0, slots - self.counts.total_running)

    @property
    def capacity(self) -> int:
        """Sessions this host admits at once: the cluster's slots plus the queue's bound."""
        return self.view.slots(self.settings.ray_cpus_per_session) + self.settings.ray_max_queued

    def refusal(self, active: int) -> tuple[grpc.StatusCode, str] | None:
        """Why one more session cannot be admitted now (status and message), or None."""
        if not self.view.reachable:
            return (
                grpc.StatusCode.UNAVAILABLE,
                f"the host's Ray cluster at {self.address} is unreachable; "
                "retry when the host reports SERVING again",
            )
        if active >= self.capacity:
            return grpc.StatusCode.RESOURCE_EXHAUSTED, (
                f"the Ray cluster is full: {self.counts.total_running} session(s) running, "
                f"{self.counts.queued} queued (at most {self.settings.ray_max_queued} may wait, "
                "KTRDR_HOST_RAY_MAX_QUEUED); retry when one finishes"
            )
        return None

    def to_proto(self) -> host_pb2.ClusterInfo:
        running = dict(self.counts.running)
        return host_pb2.ClusterInfo(
            address=self.address,
            reachable=self.view.reachable,
            node_count=len(self.view.nodes),
            cpus=self.view.cpus,
            gpus=self.view.gpus,
            cpus_per_session=self.settings.ray_cpus_per_session,
            running_sessions=self.counts.total_running,
            queued_sessions=self.counts.queued,
            free_slots=self.free_slots,
            max_queued=self.settings.ray_max_queued,
            nodes=[
                host_pb2.ClusterNode(
                    node_id=n.node_id,
                    address=n.address,
                    cpus=n.cpus,
                    gpus=n.gpus,
                    gpu_kind=n.gpu_kind,
                    running_sessions=running.get(n.node_id, 0),
                    head=n.head,
                )
                for n in self.view.nodes
            ],
        )

    # -- executors -----------------------------------------------------------------------
    def executor(self, device: str) -> RayExecutor:
        from ktrdr_host.ray.executor import RayExecutor

        return RayExecutor(self, device)

    # -- health --------------------------------------------------------------------------
    async def watch(self, health: Health, accepting: Any) -> None:
        """Refresh the view every interval; NOT_SERVING while unreachable (runs until cancelled).

        ``accepting`` tells whether the host still takes sessions (False while draining).
        """
        serving = True
        while True:
            await asyncio.sleep(self.settings.ray_health_interval_s)
            try:
                reachable = await self._probe()
                if reachable != serving and accepting():
                    if reachable:
                        logger.info(
                            "the Ray cluster at %s is reachable again: SERVING", self.address
                        )
                    else:
                        logger.warning(
                            "the Ray cluster at %s is unreachable: NOT_SERVING", self.address
                        )
                    await health.set_serving(reachable)
                    serving = reachable
            except Exception:  # the watcher never ends quietly: say so and look again
                logger.exception("watching the Ray cluster at %s failed; retrying", self.address)

    async def _probe(self) -> bool:
        if self._probe_running:  # the last one still hangs: the cluster does not answer
            return False
        self._probe_running = True
        probe = in_daemon_thread(self.refresh)
        probe.add_done_callback(self._probe_done)  # only once the call has returned
        try:
            await asyncio.wait_for(asyncio.shield(probe), DESCRIBE_TIMEOUT_S)
            return True
        except Exception as exc:
            logger.debug("Ray cluster probe failed: %s", exc)
            self.view = ClusterView(self.view.nodes, reachable=False)
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
            return False

    def _probe_done(self, future: asyncio.Future[Any]) -> None:
        self._probe_running = False
        if not future.cancelled():
            future.exception()  # retrieved: logged by _probe


def in_daemon_thread(call: Any) -> asyncio.Future[Any]:
    """``call()`` in a daemon thread of its own, as a future of the running loop.

    For calls into a cluster that may hang for good: unlike ``asyncio.to_thread``, a thread
    left hanging keeps neither the event loop's shutdown nor the process's exit waiting.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is None:
            answer.set_result(result)
        else:
            answer.set_exception(error)

    def run() -> None:
        result, error = None, None
        try:
            result = call()
        except BaseException as exc:
            error = exc
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="ray-call", daemon=True).start()
    return answer


class RayMode:
    """The host's Ray mode from start to stop: the cluster, and the task watching its health."""

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster
        self._watch: asyncio.Task[None] | None = None
        # Set when the host left a cluster that did not answer: Ray's own exit handler would
        # then wait for it forever, so the process must end without it (``ktrdr host serve``
        # does, with ``os._exit``, once everything else has stopped).
        self.abandoned = False

    @classmethod
    async def start(cls, settings: HostSettings) -> RayMode:
        """Join the cluster at ``settings.ray_address`` (raises ``RayUnavailable``)."""
        cluster = RayCluster(settings)
        await in_daemon_thread(cluster.connect)
        return cls(cluster)

    @property
    def summary(self) -> str:
        view = self.cluster.view
        return (
            f"Ray cluster {self.cluster.address}: {len(view.nodes)} node(s), "
            f"{view.cpus:g} CPU(s), {view.gpus:g} GPU(s), up to "
            f"{self.cluster.settings.ray_max_queued} queued"
        )

    def watch(self, health: Health, accepting: Any) -> None:
        self._watch = asyncio.create_task(self.cluster.watch(health, accepting), name="ray-health")

    async def stop(self) -> None:
        """Stop watching and leave the cluster (never waits long for a cluster that is gone)."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if not self.cluster.view.reachable:
            logger.warning("leaving an unreachable Ray cluster without waiting for it")
            self.abandoned = True
            return
        try:
            await asyncio.wait_for(in_daemon_thread(self.cluster.close), DESCRIBE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("the Ray cluster did not let the host go; leaving without it")
            self.abandoned = True


__all__ = ["ClusterView", "NodeView", "RayCluster", "RayMode", "RayUnavailable", "nodes_from_ray"]
