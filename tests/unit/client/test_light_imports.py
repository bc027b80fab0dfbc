"""What clients and serving processes load: the heavy stack only where it is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "numpy", "talib", "pyarrow", "sklearn")


def loaded_after(statement: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(
    "statement",
    [
        "import ktrdr.client",
        "from ktrdr.client import TrainingClient, frame",
        # what `ktrdr ops|models|strategies|config|train` (remote) and `backend tokens` load
        "import ktrdr.cli.main, ktrdr.cli.client_commands, ktrdr.cli.backend_commands",
    ],
)
def test_clients_import_no_training_stack(statement: str) -> None:
    assert loaded_after(statement) == []


def test_a_table_asked_for_loads_pandas_then() -> None:
    assert "pandas" in loaded_after("from ktrdr.client import frame; frame([])")


def test_the_backend_process_does_not_load_torch() -> None:
    """Its local runs train in worker processes; torch stays out of the serving process."""
    loaded = loaded_after("import ktrdr.backend.server")
    assert "torch" not in loaded and "sklearn" not in loaded, loaded
