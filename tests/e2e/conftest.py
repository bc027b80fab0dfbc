"""Session-wide real processes: one training host, one backend driving it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ktrdr.training.v1 import backend_pb2_grpc, host_pb2_grpc
from tests.support.processes import HOST_AUTH_TOKEN, Service, channel_to, start_backend, start_host


@pytest.fixture(scope="session")
def host_process(tmp_path_factory, sample_data_dir) -> Iterator[Service]:
    service = start_host(tmp_path_factory.mktemp("host"), sample_data_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def backend_process(tmp_path_factory, sample_data_dir, host_process) -> Iterator[Service]:
    service = start_backend(
        tmp_path_factory.mktemp("backend"), sample_data_dir, [host_process.address]
    )
    yield service
    service.stop()


@pytest.fixture
def backend_stub(backend_process) -> Iterator[backend_pb2_grpc.BackendStub]:
    with channel_to(backend_process.address) as channel:
        yield backend_pb2_grpc.BackendStub(channel)


@pytest.fixture
def host_stub(host_process) -> Iterator[host_pb2_grpc.TrainingHostStub]:
    with channel_to(host_process.address, HOST_AUTH_TOKEN) as channel:
        yield host_pb2_grpc.TrainingHostStub(channel)
