"""A real two-node Ray cluster on loopback, a host in Ray mode and a backend in front of it.

The cluster (head 127.0.0.2 and one node 127.0.0.3, one CPU each) is started once per test
session by ``ray start --block`` processes and stopped by their process ids; see
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
def ray_cluster() -> Iterator[LocalRayCluster]:
    cluster = LocalRayCluster([1, 1], system_env=dict(FAST_NODE_DEATH))
    try:
        cluster.start(timeout_s=scaled(120))
        yield cluster
    finally:
        cluster.cleanup()


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
