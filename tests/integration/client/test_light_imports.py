"""What clients and serving processes load: the heavy stack only where it is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"
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


def test_the_backend_process_loads_no_training_stack() -> None:
    """Its local runs train in worker processes; a backend that routes to hosts never needs
    torch, pandas, numpy, TA-Lib or pyarrow."""
    assert loaded_after("import ktrdr.backend.server, ktrdr.backend.servicer") == []


def test_the_host_process_loads_no_training_stack() -> None:
    """Its sessions train in worker processes; the device it reports comes from a probe."""
    assert loaded_after("import ktrdr_host.server, ktrdr_host.servicer") == []


def test_checking_a_strategy_loads_no_training_stack() -> None:
    """The services validate every strategy they receive; that takes the catalogue of
    indicators and fuzzy-set rules, not the libraries that compute them."""
    statement = (
        "from pathlib import Path\n"
        "from ktrdr.config import load_strategy\n"
        f"paths = sorted(Path({str(EXAMPLES)!r}).glob('*.yaml'))\n"
        "assert len(paths) >= 3, paths\n"
        "for path in paths:\n"
        "    load_strategy(path)\n"
    )
    assert loaded_after(statement) == []


def test_computing_an_indicator_loads_what_it_needs() -> None:
    loaded = loaded_after(
        "import pandas as pd\n"
        "from ktrdr.indicators import get_indicator\n"
        "frame = pd.DataFrame({'close': [float(i) for i in range(1, 40)]})\n"
        "assert get_indicator('rsi').compute(frame, {}).notna().sum() == 25"
    )
    assert {"numpy", "pandas", "talib"} <= set(loaded)
