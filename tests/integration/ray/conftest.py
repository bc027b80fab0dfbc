"""A real two-node Ray cluster on loopback, a host in Ray mode and a backend in front of it.

The cluster (head 127.0.0.2 and one node 127.0.0.3, one CPU each) is started by ``ray start
--block`` processes and stopped by their process ids, once per test session unless a module
took it away (``test_ray_host`` kills nodes in its last tests): a module that finds a node gone
gets a fresh cluster, whatever order pytest-xdist runs the modules in. See
``ktrdr_host.ray.local_cluster`` for what keeps Ray on loopback. Skipped when Ray is not
installed (the ``ray`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ktrdr_host.ray.local_cluster import LocalRayCluster
from tests.integration.ray.ray_processes import (
    FAST_NODE_DEATH,
    SAMPLE_DATA,
    start_ray_host,
)
from tests.support.needs import installed
from tests.support.processes import Service, start_backend
from tests.support.timing import scaled

if not installed("ray"):  # Ray is not installed (pip install 'ktrdr[training,ray]')
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def _ray_clusters() -> Iterator[list[LocalRayCluster]]:
    """Every cluster this session started (the live one last); all stopped at the end."""
    clusters: list[LocalRayCluster] = []
    try:
        yield clusters
    finally:
        for cluster in clusters:
            cluster.cleanup()


def _all_nodes_running(cluster: LocalRayCluster) -> bool:
    return all(node.process.poll() is None for node in cluster.nodes)


@pytest.fixture(scope="module")
def ray_cluster(_ray_clusters: list[LocalRayCluster]) -> LocalRayCluster:
    """The session's cluster, started again when an earlier module stopped any of its nodes."""
    if _ray_clusters and _all_nodes_running(_ray_clusters[-1]):
        return _ray_clusters[-1]
    if _ray_clusters:
        _ray_clusters[-1].cleanup()
    cluster = LocalRayCluster([1, 1], system_env=dict(FAST_NODE_DEATH))
    _ray_clusters.append(cluster)
    cluster.start(timeout_s=scaled(120))
    return cluster


@pytest.fixture(scope="module")
def ray_host(
    tmp_path_factory: pytest.TempPathFactory, ray_cluster: LocalRayCluster
) -> Iterator[Service]:
    service = start_ray_host(tmp_path_factory.mktemp("ray-host"), ray_cluster)
    try:
        yield service
    finally:
        service.stop(crash=True)  # its sessions' tasks end with their driver


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory: pytest.TempPathFactory, ray_host: Service) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("ray-backend")
    backend = start_backend(work, SAMPLE_DATA, [ray_host.address])
    try:
        yield backend
    finally:
        backend.stop()
