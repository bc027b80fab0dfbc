"""``FileWriter``: a file written in order by a thread of its own, bounded, errors handed back."""

from __future__ import annotations

import errno
import io
import os
import threading
from pathlib import Path

import pytest

from ktrdr.transfer.writer import FileWriter, WriterStopped


class ShortWrites(io.RawIOBase):
    """Writes at most 1000 bytes a call, like an unbuffered file may; may block or fail."""

    def __init__(self, *, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.data = bytearray()
        self.gate = gate
        self.fail = fail

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.fail:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = memoryview(b)  # type: ignore[arg-type]
        self.data += view[:1000]
        return min(len(view), 1000)


def test_pieces_are_written_whole_and_in_order_despite_short_writes() -> None:
    file = ShortWrites()
    writer = FileWriter(file, max_pending=2)  # type: ignore[arg-type]
    pieces = [os.urandom(2500 + i) for i in range(20)]
    for i, piece in enumerate(pieces):
        writer.write(piece if i % 2 else memoryview(piece))
    writer.finish()
    assert bytes(file.data) == b"".join(pieces)
    assert writer.written == len(file.data)


def test_a_write_error_is_raised_by_a_later_write_or_finish() -> None:
    writer = FileWriter(ShortWrites(fail=True), max_pending=1)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="space"):
        for _ in range(100):  # the first piece fails in the thread; a later call says so
            writer.write(b"x" * 100)
        writer.finish()
    writer.stop()


def test_stop_releases_a_blocked_producer_and_ends_the_thread() -> None:
    gate = threading.Event()
    writer = FileWriter(ShortWrites(gate=gate), max_pending=1)  # type: ignore[arg-type]
    writer.write(b"first")  # the thread blocks writing it; it counts until written
    outcome: list[BaseException] = []

    def produce() -> None:
        try:
            writer.write(b"second")  # waits for room (or finds the writer stopped)
        except BaseException as exc:
            outcome.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    writer.cancel()
    producer.join(10)
    assert not producer.is_alive()
    assert isinstance(outcome[0], WriterStopped)
    gate.set()
    writer.stop()


def test_real_file(tmp_path: Path) -> None:
    path = tmp_path / "out.part"
    data = os.urandom(3 << 20)
    with open(path, "wb", buffering=0) as file:
        writer = FileWriter(file)
        with memoryview(data) as view:
            for start in range(0, len(data), 1 << 20):
                writer.write(view[start : start + (1 << 20)])
            writer.finish()
    assert path.read_bytes() == data
