"""A full disk on demand: ``Filler`` takes every free byte of a (small, test-mounted) file
system and gives it back."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class Filler:
    """Takes every free byte of a file system, and gives it back."""

    def __init__(self, directory: Path, name: str = "filler") -> None:
        self.path = directory / name

    def fill(self) -> None:
        """Write until the file system is full (ENOSPC at 1 MiB, 4 KiB, then 1 byte)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.path.unlink(missing_ok=True)
