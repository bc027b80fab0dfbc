"""``ChunkPipeline``: one worker thread, a bounded queue, errors raised on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from ktrdr.transfer.codecs import CodecError
from ktrdr.transfer.pipeline import ChunkPipeline

KiB = 1 << 10


class RecordingDecoder:
    """Records what it is fed (in the worker thread); may block or fail on a chosen chunk."""

    def __init__(self, *, gate: threading.Event | None = None, fail_at: int | None = None) -> None:
        self.fed: list[bytes] = []
        self.threads: set[str] = set()
        self.finished = False
        self.gate = gate
        self.fail_at = fail_at

    def feed(self, data: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.fail_at is not None and len(self.fed) == self.fail_at:
            raise CodecError("corrupt chunk")
        self.fed.append(bytes(data))

    def finish(self) -> None:
        self.finished = True


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let the loop run until ``condition()`` holds (the worker runs in its own thread)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


def chunks(count: int, size: int) -> list[bytes]:
    return [bytes([i % 256]) * size for i in range(count)]


async def test_chunks_are_fed_in_order_in_one_worker_thread() -> None:
    decoder = RecordingDecoder()
    pipeline = ChunkPipeline(decoder, max_pending_bytes=64 * KiB)
    data = chunks(50, 10 * KiB)
    try:
        for chunk in data:
            await pipeline.put(chunk)
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert decoder.fed == data
    assert decoder.finished
    assert decoder.threads == {"submit-results"}
    assert pipeline.peak_pending_bytes <= 64 * KiB


async def test_the_queue_is_bounded_and_put_waits_while_it_is_full() -> None:
    gate = threading.Event()
    decoder = RecordingDecoder(gate=gate)
    pipeline = ChunkPipeline(decoder, max_pending_bytes=300 * KiB)
    data = chunks(10, 100 * KiB)

    async def produce() -> None:
        for chunk in data:
            await pipeline.put(chunk)

    producer = asyncio.create_task(produce())
    try:
        await until(lambda: pipeline.waiting_for_space)
        assert not producer.done()
        assert decoder.fed == []  # the worker is stuck on the first chunk
        assert pipeline.pending_bytes <= 300 * KiB
        gate.set()
        await producer
        await pipeline.finish()
    finally:
        gate.set()
        await pipeline.close()
    assert decoder.fed == data
    assert pipeline.peak_pending_bytes <= 300 * KiB


async def test_a_chunk_bigger_than_the_budget_still_passes() -> None:
    decoder = RecordingDecoder()
    pipeline = ChunkPipeline(decoder, max_pending_bytes=KiB)
    try:
        await pipeline.put(b"x" * (64 * KiB))
        await pipeline.put(b"y" * (64 * KiB))
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert [len(c) for c in decoder.fed] == [64 * KiB, 64 * KiB]


async def test_a_corrupt_chunk_mid_stream_stops_the_stream() -> None:
    gate = threading.Event()
    decoder = RecordingDecoder(gate=gate, fail_at=3)
    pipeline = ChunkPipeline(decoder, max_pending_bytes=16 * KiB)
    gate.set()
    data = chunks(100, 4 * KiB)
    with pytest.raises(CodecError, match="corrupt chunk"):
        try:
            for chunk in data:
                await pipeline.put(chunk)
            await pipeline.finish()
        finally:
            await pipeline.close()
    # The refusal came from a put long before the end, and nothing after chunk 3 was fed.
    assert decoder.fed == data[:3]
    assert not decoder.finished


async def test_an_error_in_the_last_chunk_is_raised_by_finish() -> None:
    decoder = RecordingDecoder(fail_at=0)
    pipeline = ChunkPipeline(decoder)
    try:
        await pipeline.put(b"only chunk")
        with pytest.raises(CodecError):
            await pipeline.finish()
    finally:
        await pipeline.close()


async def test_close_waits_for_the_worker_even_when_cancelled() -> None:
    gate = threading.Event()
    decoder = RecordingDecoder(gate=gate)
    pipeline = ChunkPipeline(decoder, max_pending_bytes=8 * KiB)

    async def produce_then_close() -> None:
        try:
            for chunk in chunks(10, 4 * KiB):
                await pipeline.put(chunk)
        finally:
            await pipeline.close()

    task = asyncio.create_task(produce_then_close())
    # the worker is decoding the first chunk (held at the gate) and the producer waits for
    # space (under load the worker thread may take its first chunk only after the producer
    # has filled the budget: wait for both)
    await until(lambda: pipeline.waiting_for_space and bool(decoder.threads))
    task.cancel()
    await until(lambda: pipeline.stopping)  # close() has begun and waits for the worker
    assert not task.done()
    gate.set()  # the chunk being decoded completes; the queued ones are dropped
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipeline.stopped
    assert len(decoder.fed) == 1


def test_budget_must_be_positive() -> None:
    async def make() -> None:
        ChunkPipeline(RecordingDecoder(), max_pending_bytes=0)

    with pytest.raises(ValueError):
        asyncio.run(make())
