#!/usr/bin/env python3
"""Generate the Python code of the ktrdr.training.v1 contract from ``protos/``.

Runs ``grpc_tools.protoc`` with ``--python_out``, ``--grpc_python_out`` and ``--pyi_out``.
protoc names each module after its proto file's path, so
``protos/ktrdr/training/v1/host.proto`` becomes ``<out>/ktrdr/training/v1/host_pb2.py``
(the module ``ktrdr.training.v1.host_pb2``). The package also gets an ``__init__.py`` and a
``py.typed`` marker. Output is deterministic: the same protos and grpcio-tools version give
byte-identical files, so the committed code can be checked for drift.

Usage:
    python scripts/gen_protos.py                 # regenerate into src/
    python scripts/gen_protos.py --out /tmp/x    # generate elsewhere (drift test)
    python scripts/gen_protos.py --check         # exit 1 if src/ differs from the protos
"""

from __future__ import annotations

import argparse
import importlib.resources
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
DEFAULT_OUT = REPO_ROOT / "src"
PACKAGE_DIR = Path("ktrdr/training/v1")

INIT_TEXT = '''"""Generated protobuf and gRPC code of the ktrdr.training.v1 contract.

Do not edit: regenerate with ``make protos`` (scripts/gen_protos.py) from
protos/ktrdr/training/v1/*.proto. Importing these modules must never import PyTorch.
"""
'''

# Files in the package directory that the generator owns (anything else is left alone).
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
EXTRA_FILES = {"__init__.py": INIT_TEXT, "py.typed": ""}


def _protoc(proto_root: Path, out_dir: Path) -> None:
    from grpc_tools import protoc

    protos = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}")
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *protos,
    ]
    # protoc resolves the relative proto names against --proto_path entries.
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def render(proto_root: Path = PROTO_ROOT) -> dict[str, bytes]:
    """Return the generated package's files, name -> content, without touching the tree."""
    with tempfile.TemporaryDirectory(prefix="ktrdr-protos-") as tmp:
        _protoc(proto_root, Path(tmp))
        package = Path(tmp) / PACKAGE_DIR
        files = {p.name: p.read_bytes() for p in sorted(package.iterdir()) if p.is_file()}
        unexpected = sorted(set(Path(tmp).rglob("*.py*")) - set(package.iterdir()))
        if unexpected:
            raise SystemExit(f"protoc wrote outside {PACKAGE_DIR}: {unexpected}")
    for name, text in EXTRA_FILES.items():
        files[name] = text.encode()
    return files


def _owned(name: str) -> bool:
    return name in EXTRA_FILES or name.endswith(GENERATED_SUFFIXES)


def write(files: dict[str, bytes], out_root: Path) -> list[str]:
    """Write ``files`` into ``out_root/ktrdr/training/v1``; remove stale generated files.

    Returns the names that changed. Unchanged files are not rewritten.
    """
    package = out_root / PACKAGE_DIR
    package.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for stale in sorted(package.iterdir()):
        if stale.is_file() and _owned(stale.name) and stale.name not in files:
            stale.unlink()
            changed.append(stale.name)
    for name, content in sorted(files.items()):
        target = package / name
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
            changed.append(name)
    return changed


def diff(files: dict[str, bytes], out_root: Path) -> list[str]:
    """Names whose committed content differs from ``files`` (missing, stale or changed)."""
    package = out_root / PACKAGE_DIR
    present = {p.name: p.read_bytes() for p in package.glob("*") if p.is_file() and _owned(p.name)}
    names = sorted(set(present) | set(files))
    return [n for n in names if present.get(n) != files.get(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", type=Path, default=PROTO_ROOT, help="proto sources")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (src/)")
    parser.add_argument(
        "--check", action="store_true", help="report drift instead of writing; exit 1 on drift"
    )
    args = parser.parse_args(argv)
    files = render(args.proto_root)
    if args.check:
        drift = diff(files, args.out)
        for name in drift:
            print(f"out of date: {args.out / PACKAGE_DIR / name}", file=sys.stderr)
        if drift:
            print("run `make protos` and commit the result", file=sys.stderr)
        return 1 if drift else 0
    changed = write(files, args.out)
    print(f"generated {len(files)} files in {args.out / PACKAGE_DIR} ({len(changed)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
