"""The progress fan-out: ordering, snapshots, slow watchers, thread-safety."""

from __future__ import annotations

import asyncio
import threading

from ktrdr.service.fanout import EventFanout


def make(loop, limit=4):
    return EventFanout(
        loop,
        droppable=lambda e: e.startswith("batch"),
        terminal=lambda e: e == "done",
        buffer_limit=limit,
    )


async def test_watchers_get_snapshot_then_live_events_until_terminal():
    fan = make(asyncio.get_running_loop(), limit=100)
    fan.publish("step1")
    snapshot, sub = fan.subscribe()
    assert snapshot == "step1"
    for e in ("step2", "batch1", "done", "after"):
        fan.publish(e)
    assert [e async for e in sub] == ["step2", "batch1", "done"]
    assert fan.last == "done" and fan.closed
    snapshot, late = fan.subscribe()
    assert snapshot == "done" and [e async for e in late] == []


async def test_slow_watcher_loses_only_droppable_events():
    fan = make(asyncio.get_running_loop(), limit=2)
    _, slow = fan.subscribe()
    events = ["step1", *(f"batch{i}" for i in range(50)), "epoch1", "done"]
    for e in events:
        fan.publish(e)
    got = [e async for e in slow]
    assert got[0] == "step1" and got[-2:] == ["epoch1", "done"]
    assert slow.dropped > 0 and len(got) < len(events)


async def test_publish_from_a_worker_thread_keeps_order():
    loop = asyncio.get_running_loop()
    fan = make(loop, limit=10_000)
    _, sub = fan.subscribe()
    events = [f"e{i}" for i in range(500)] + ["done"]
    thread = threading.Thread(target=lambda: [fan.publish(e) for e in events])
    thread.start()
    got = [e async for e in sub]
    thread.join()
    assert got == events


async def test_closing_a_subscription_detaches_it():
    fan = make(asyncio.get_running_loop())
    _, sub = fan.subscribe()
    assert fan.watcher_count == 1
    sub.close()
    assert fan.watcher_count == 0
