"""examples/notebooks/quickstart.ipynb runs top to bottom in a kernel of this environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    # The notebook starts its own host and backend when this is unset.
    monkeypatch.delenv("KTRDR_BACKEND_ADDRESS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    # The kernel is this interpreter (ipykernel from the project's environment): the python3
    # kernelspec's "python" is replaced by sys.executable in jupyter_client.
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in ("python", "python3", sys.executable), spec.argv
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=scaled(240),
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = {
        i: "".join(
            o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
            for o in cell.get("outputs", [])
        )
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    assert "health: SERVING" in text
    assert "test_accuracy" in text  # the metrics table
    assert "verdict: " in text and "buy_and_hold" in text  # the trading metrics table
    assert "services stopped" in text
    assert "downloaded to:" in text and "signals: {" in text  # the model, fetched and used
    images = [
        o
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert ": completed; best trial " in text and "best model alias: " in text  # the sweep
    assert "best value:" in text  # its Optuna study, rebuilt on the client
    # the training plot, then Optuna's optimisation history and parameter importances
    assert len(images) >= 3, f"{len(images)} images: a plot cell produced none"
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # Every service the notebook started is gone.
    logs = list(tmp_path.glob("ktrdr-notebook-*/backend.log"))
    assert logs and os.path.exists(logs[0])
