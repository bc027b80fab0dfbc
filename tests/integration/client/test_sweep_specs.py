"""The client and the sweep commands import no Optuna (a child interpreter)."""

from __future__ import annotations


def test_the_client_imports_no_optuna() -> None:
    import subprocess
    import sys

    code = "import sys, ktrdr.client, ktrdr.cli.sweep_commands; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
