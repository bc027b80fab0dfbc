"""StartTraining on a real host (loopback): bounded strategy input (issue 8).

Every bad strategy is refused with INVALID_ARGUMENT (RESOURCE_EXHAUSTED for the size) and a
``strategy_yaml.`` field path within a second, no session is created, and the host's health
check keeps answering meanwhile: validation runs off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr.transfer import grpc_options
from ktrdr_host.server import RunningHost, start_host
from ktrdr_host.settings import HostSettings
from tests.support.strategy_probes import (
    BAD_STRATEGIES,
    INVALID,
    Edit,
    during,
    raw_string_field,
    slow_but_small,
)
from tests.support.timing import scaled

HEALTH_BOUND_S = scaled(1.5)  # see tests/unit/backend/test_strategy_bounds.py
HEALTH_TYPICAL_S = scaled(0.1)


@dataclass
class Host:
    running: RunningHost
    channel: grpc.aio.Channel
    stub: host_pb2_grpc.TrainingHostStub

    async def start(self, strategy_yaml: str) -> None:
        request = host_pb2.StartTrainingRequest(
            session_id="op-1", strategy_yaml=strategy_yaml, results_target="127.0.0.1:9"
        )
        async for _ in self.stub.StartTraining(request, timeout=scaled(30)):
            pass

    async def sessions(self) -> list[host_pb2.Session]:
        answer = await self.stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=scaled(5))
        return list(answer.sessions)


async def _host(settings: HostSettings) -> AsyncIterator[Host]:
    running = await start_host(settings)
    channel = aio_channel(running.address, options=grpc_options(), token=running.token)
    try:
        yield Host(running, channel, host_pb2_grpc.TrainingHostStub(channel))
    finally:
        await channel.close()
        await running.shutdown()


@pytest.fixture
async def host(host_settings: HostSettings) -> AsyncIterator[Host]:
    async for h in _host(host_settings):
        yield h


@pytest.mark.parametrize(("edit", "code", "expected"), BAD_STRATEGIES.values(), ids=BAD_STRATEGIES)
async def test_bad_strategy_is_refused_fast_with_its_field(
    host: Host, tiny_strategy_yaml: str, edit: Edit, code: grpc.StatusCode, expected: str
):
    probe = await during(host.channel, lambda: host.start(edit(tiny_strategy_yaml)))
    assert (probe.code, expected in probe.details) == (code, True), probe.details[:500]
    assert probe.details.startswith("strategy_yaml")
    assert probe.elapsed_s < scaled(3.0)  # blocked, it took 8-30 s
    assert len(probe.details) < 2000
    assert probe.worst_health_s < HEALTH_BOUND_S, probe.health_s
    assert await host.sessions() == []


async def test_health_answers_while_a_large_strategy_is_parsed(host: Host, tiny_strategy_yaml):
    probe = await during(host.channel, lambda: host.start(slow_but_small(tiny_strategy_yaml)))
    assert probe.code == INVALID
    assert "strategy_yaml.model.training.epochs: at most 10000, got 20000" in probe.details
    assert len(probe.health_s) >= 3, (probe.elapsed_s, probe.health_s)
    assert probe.worst_health_s < HEALTH_BOUND_S, probe.health_s
    assert probe.median_health_s < HEALTH_TYPICAL_S, probe.health_s


async def test_limits_come_from_the_settings(host_settings: HostSettings, tiny_strategy_yaml):
    settings = host_settings.model_copy(update={"max_epochs": 3, "max_strategy_bytes": 2000})
    async for h in _host(settings):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await h.start(tiny_strategy_yaml)
        assert info.value.code() == INVALID
        assert (info.value.details() or "").startswith(
            "strategy_yaml.model.training.epochs: at most 3, got 4"
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await h.start(tiny_strategy_yaml + "#" * 2000)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_invalid_utf8_is_invalid_argument_not_unknown(host: Host):
    number = host_pb2.StartTrainingRequest.DESCRIPTOR.fields_by_name["strategy_yaml"].number
    raw = host.channel.unary_stream(
        "/ktrdr.training.v1.TrainingHost/StartTraining",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in raw(raw_string_field(number, b"name: caf\xe9\xff\n"), timeout=scaled(5)):
            pass
    assert info.value.code() == INVALID
    details = info.value.details() or ""
    assert "StartTraining request" in details and "UTF-8" in details
    assert "<class" not in details
