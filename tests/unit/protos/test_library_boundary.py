"""The training library never imports generated gRPC code; only the service edge does."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY_PACKAGES = (
    "config",
    "data",
    "indicators",
    "fuzzy",
    "features",
    "labels",
    "models",
    "storage",
    "training",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_library_modules_do_not_import_generated_code(repo_root: Path):
    offenders = []
    for package in LIBRARY_PACKAGES:
        for path in (repo_root / "src" / "ktrdr" / package).rglob("*.py"):
            if "v1" in path.relative_to(repo_root / "src" / "ktrdr").parts:
                continue  # the generated code itself
            bad = {
                m
                for m in imported_modules(path)
                if "training.v1" in m or m.endswith("_pb2") or "grpc" in m.split(".")[0]
            }
            if bad:
                offenders.append(f"{path.relative_to(repo_root)}: {sorted(bad)}")
    assert offenders == []
