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
    fan = new_fanout(buffer_limit=10_000)
    run = ExecutorRun(TrainingExecutor(sample_data_dir, device="cpu"), config, fanout=fan)
    _, sub = fan.subscribe()
    task = asyncio.create_task(run.run())

    async def first_epoch() -> None:  # cancel while it trains, however slow the machine
        while not any(e.kind == common_pb2.PROGRESS_KIND_EPOCH for e in sub.items):
            assert not task.done(), "the run ended before its first epoch"
            await asyncio.sleep(0.02)

    await asyncio.wait_for(first_epoch(), scaled(120))
    sub.close()
    run.cancel("test")
    with pytest.raises(TrainingCancelled):  # within batches of the cancel, not 400 epochs
        await asyncio.wait_for(task, scaled(30))
