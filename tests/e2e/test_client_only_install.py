"""The client installs without the training stack and drives a running backend.

A fresh virtual environment gets ``pip install`` of the project with no extras (from a copy
of its sources: the build must not write into the checkout); it has no torch, TA-Lib, numpy,
pandas, pydantic or PyYAML. From it, ``TrainingClient`` trains through a backend started from
the full environment, watches, lists, reads the result and downloads the model, and the CLI
lists operations; show, download and watch work from the CLI; a command or table that
needs the training library or pandas says so in one line with the install command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ADMIN_TOKEN, REPO_ROOT, Service, start_backend
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTALL_TIMEOUT_S = scaled(480)  # a clean CI machine downloads grpcio, protobuf and setuptools
ABSENT = ("torch", "talib", "numpy", "pandas", "pydantic", "yaml", "sklearn", "pyarrow")


@pytest.fixture(scope="module")
def client_python(tmp_path_factory) -> Path:
    """The interpreter of a venv holding only the client part of the project."""
    root = tmp_path_factory.mktemp("client-only")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=ignore)
    shutil.copytree(REPO_ROOT / "host", source / "host", ignore=ignore)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


@pytest.fixture(scope="module")
def local_backend(tmp_path_factory, sample_data_dir) -> Iterator[Service]:
    service = start_backend(tmp_path_factory.mktemp("backend"), sample_data_dir, [])
    yield service
    service.stop()


def run_client(python: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["KTRDR_TOKEN"] = ADMIN_TOKEN
    return subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        env=env,
        cwd=python.parents[2],  # not the checkout: nothing of the repository is importable
    )


def test_the_client_venv_lacks_the_training_stack(client_python: Path) -> None:
    code = (
        "import importlib.util, json\n"
        f"print(json.dumps([m for m in {ABSENT!r} if importlib.util.find_spec(m)]))\n"
    )
    result = run_client(client_python, "-c", code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_client_trains_watches_and_lists_through_a_backend(
    client_python: Path, local_backend: Service, tiny_strategy_yaml: str
) -> None:
    code = f"""
import json, sys
from ktrdr.client import TrainingClient
with TrainingClient({local_backend.address!r}) as client:
    result = client.train({tiny_strategy_yaml!r}, mode="local", seed=7, progress=False)
    ops = client.operations()
    models = client.models("tiny_rsi")
    bundle = client.download_model("tiny_rsi", cache_dir="cache")
    files = sorted(p.name for p in bundle.iterdir())
    print(json.dumps({{
        "status": result.status,
        "accuracy": result.metrics.get("test_accuracy"),
        "listed": [op.operation_id for op in ops],
        "op": result.operation_id,
        "versions": [m.version for m in models],
        "files": files,
        "modules": sorted(m for m in {ABSENT!r} if m in sys.modules),
    }}))
"""
    result = run_client(client_python, "-c", code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == "completed"
    assert 0.0 <= seen["accuracy"] <= 1.0
    assert seen["op"] in seen["listed"]
    assert seen["versions"], seen
    assert {"metadata.json", "weights.safetensors"} <= set(seen["files"]), seen
    assert seen["modules"] == []


def test_the_cli_trains_lists_and_names_what_a_local_command_lacks(
    client_python: Path, local_backend: Service, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    ktrdr = str(client_python.parent / "ktrdr")
    listed = subprocess.run(
        [ktrdr, "ops", "list", "--json", "--backend", local_backend.address],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env={**os.environ, "KTRDR_TOKEN": ADMIN_TOKEN},
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    remote = subprocess.run(
        [ktrdr, "train", str(strategy), "--backend", local_backend.address, "--mode", "local"],
        capture_output=True,
        text=True,
        timeout=scaled(240),
        env={**os.environ, "KTRDR_TOKEN": ADMIN_TOKEN},
        cwd=tmp_path,
    )
    assert remote.returncode == 0, remote.stderr
    assert "test accuracy  " in remote.stdout and "model saved:" in remote.stdout, remote.stdout
    local = subprocess.run(
        [ktrdr, "train", str(strategy), "--local"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=tmp_path,
    )
    assert local.returncode == 1
    assert len(local.stderr.strip().splitlines()) == 1, local.stderr  # one line, no traceback
    assert "pip install 'ktrdr[training]'" in local.stderr


def test_show_download_and_watch_work_and_the_rest_says_what_to_install(
    client_python: Path, local_backend: Service, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(KTRDR_TOKEN=ADMIN_TOKEN, KTRDR_BACKEND_ADDRESS=local_backend.address)

    def ktrdr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(client_python.parent / "ktrdr"), *args],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            cwd=tmp_path,
        )

    def one_line_hint(done: subprocess.CompletedProcess, *fragments: str) -> None:
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]

    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    started = ktrdr("train", str(strategy), "--mode", "local", "--seed", "3", "--detach")
    assert started.returncode == 0, started.stderr
    watched = ktrdr("ops", "watch", started.stdout.strip())
    assert watched.returncode == 0, watched.stderr
    shown = ktrdr("models", "show", "tiny_rsi")
    assert shown.returncode == 0, shown.stderr
    assert "test        accuracy" in shown.stdout and "precision" in shown.stdout, shown.stdout
    downloaded = ktrdr("models", "download", "tiny_rsi", "--out", str(tmp_path / "model"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "model" / "metadata.json").is_file()

    data = tmp_path / "EURUSD_1h.csv"
    data.write_text("timestamp,open,high,low,close,volume\n")
    one_line_hint(
        ktrdr("predict", "tiny_rsi", "--data", str(data)),
        "`ktrdr predict`",
        "pip install 'ktrdr[training]'",
    )
    one_line_hint(
        ktrdr("strategy", "validate", str(strategy)),
        "`ktrdr strategy validate`",
        "pip install 'ktrdr[training]'",
    )

    code = f"""
import json
from ktrdr.client import TrainingClient
with TrainingClient({local_backend.address!r}) as client:
    result = client.watch({started.stdout.strip()!r}, progress=False)
    try:
        result.metrics_frame()
        hint = None
    except ImportError as exc:
        hint = str(exc)
    print(json.dumps({{"hint": hint, "metrics": result.metrics,
                      "epochs": len(result.history_rows())}}))
"""
    result = run_client(client_python, "-c", code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "pip install 'ktrdr[notebook]'" in seen["hint"] and "\n" not in seen["hint"], seen
    assert "test_accuracy" in seen["metrics"] and seen["epochs"] >= 1, seen
