from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# `sample_data_dir` (data/samples in this repository, never ../shared) comes from
# tests/conftest.py.


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path / name`` and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
