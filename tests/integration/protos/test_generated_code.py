"""The committed generated code matches the protos, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
GENERATED = REPO_ROOT / "src" / "ktrdr" / "training" / "v1"
GENERATOR = REPO_ROOT / "scripts" / "gen_protos.py"
OWNED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _owned_files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file()
        and (p.name in ("__init__.py", "py.typed") or p.name.endswith(OWNED_SUFFIXES))
    }


def test_committed_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    fresh = _owned_files(tmp_path / "ktrdr" / "training" / "v1")
    committed = _owned_files(GENERATED)
    assert sorted(committed) == sorted(fresh), "run `make protos`: generated files differ"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"run `make protos`: out of date: {stale}"


def test_generation_is_deterministic(tmp_path: Path) -> None:
    for out in ("a", "b"):
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(tmp_path / out)],
            check=True,
            capture_output=True,
        )
    package = Path("ktrdr") / "training" / "v1"
    assert _owned_files(tmp_path / "a" / package) == _owned_files(tmp_path / "b" / package)


def test_importing_the_stubs_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import ktrdr.training.v1.backend_pb2_grpc, ktrdr.training.v1.host_pb2_grpc\n"
        "import ktrdr.transfer\n"
        "heavy = sorted(m for m in ('torch', 'pandas', 'talib') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
