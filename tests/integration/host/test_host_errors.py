"""The host's error boundary: an unexpected exception in an RPC answers INTERNAL naming the
host's log (not UNKNOWN with a Python class name or a server path)."""

from __future__ import annotations

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr.transfer import grpc_options
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings
from tests.support.timing import scaled

SECRET = "/srv/host/secret-place"


async def test_a_bug_in_a_host_rpc_answers_internal_with_the_hosts_message(
    host_settings: HostSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = await start_host(host_settings)
    channel = aio_channel(host.address, options=grpc_options(), token=host.token)
    try:

        def broken(states: object) -> list[object]:
            raise RuntimeError(f"bug while reading {SECRET}")

        monkeypatch.setattr(host.registry, "list_sessions", broken)
        stub = host_pb2_grpc.TrainingHostStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=scaled(5))
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert info.value.details() == (
            "ListSessions failed on the server (the host's log has the details)"
        )
    finally:
        await channel.close()
        await host.shutdown()
