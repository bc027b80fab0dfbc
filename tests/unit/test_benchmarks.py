"""``make bench`` and ``run_all.py --quick`` reach the end: every benchmark is run and takes
``--quick`` (read from the sources, nothing imported or started)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _listed() -> list[str]:
    tree = ast.parse((BENCH_DIR / "run_all.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "BENCHMARKS":
            return list(ast.literal_eval(node.value))
    raise AssertionError("run_all.py has no BENCHMARKS list")


def _options(path: Path) -> set[str]:
    return {
        node.args[0].value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "add_argument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_run_all_runs_every_benchmark() -> None:
    assert sorted(_listed()) == sorted(p.name for p in BENCH_DIR.glob("bench_*.py"))


def test_every_benchmark_takes_quick() -> None:
    missing = [name for name in _listed() if "--quick" not in _options(BENCH_DIR / name)]
    assert missing == []
