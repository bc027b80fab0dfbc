"""Runs a ``ktrdr`` command in-process, for the CLI tests of both tiers."""

from __future__ import annotations

import pytest

from ktrdr.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``ktrdr ARGV``."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
