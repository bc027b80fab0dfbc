"""ExecutorRun: progress numbering, heartbeats and cancellation, without gRPC."""

from __future__ import annotations

import asyncio

import pytest

from ktrdr.config import parse_strategy
from ktrdr.errors import TrainingCancelled
from ktrdr.service.execution import ExecutorRun, new_fanout
from ktrdr.training.v1 import common_pb2
from tests.support.timing import scaled


async def test_run_streams_numbered_events(sample_data_dir, tiny_strategy_yaml):
    from ktrdr.training.executor import TrainingExecutor

    fan = new_fanout(buffer_limit=10_000)
    run = ExecutorRun(
        TrainingExecutor(sample_data_dir, device="cpu"),
        parse_strategy(tiny_strategy_yaml),
        fanout=fan,
        heartbeat_s=0.05,
    )
    _, sub = fan.subscribe()
    result = await run.run()
    sub.close()
    events = list(sub.items)
    assert result.summary["test_accuracy"] >= 0
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    kinds = {e.kind for e in events}
    assert common_pb2.PROGRESS_KIND_STEP_STARTED in kinds
    assert common_pb2.PROGRESS_KIND_EPOCH in kinds


async def test_cancel_raises_training_cancelled(sample_data_dir, tiny_strategy_yaml):
    from ktrdr.training.executor import TrainingExecutor

    config = parse_strategy(tiny_strategy_yaml.replace("epochs: 4", "epochs: 400"))
    run = ExecutorRun(TrainingExecutor(sample_data_dir, device="cpu"), config, fanout=new_fanout())
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.5)
    run.cancel("test")
    with pytest.raises(TrainingCancelled):
        await asyncio.wait_for(task, scaled(5))
