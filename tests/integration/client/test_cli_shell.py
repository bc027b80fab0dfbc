"""The ``ktrdr`` command as a shell sees it: ``python -m ktrdr``, completion scripts, quiet
SIGPIPE, one-line start-up errors. Real subprocesses and a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.cli.completion import command_words, zsh_script
from ktrdr.cli.main import build_parser
from tests.support.timing import scaled


def ktrdr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "ktrdr", *args],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_python_dash_m_ktrdr() -> None:
    done = ktrdr("--version")
    assert done.returncode == 0 and done.stdout.startswith("ktrdr ")


def complete(script: Path, *words: str) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _ktrdr; "
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=script.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_script(tmp_path: Path) -> None:
    done = ktrdr("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "ktrdr.bash"
    script.write_text(done.stdout)
    (tmp_path / "strategy.yaml").write_text("x")
    assert complete(script, "ktrdr", "mo") == ["models"]
    assert complete(script, "ktrdr", "models", "") == [
        "list", "show", "download", "delete", "alias", "tag",
    ]  # fmt: skip
    assert set(complete(script, "ktrdr", "models", "list", "--s")) == {"--sort", "--strategy"}
    assert "--tag" in complete(script, "ktrdr", "train", "--t")
    assert complete(script, "ktrdr", "train", "strat") == ["strategy.yaml"]  # files


def test_zsh_completion_script(tmp_path: Path) -> None:
    script = zsh_script(build_parser())
    assert script.startswith("#compdef ktrdr") and "compdef _ktrdr ktrdr" in script
    assert "'ktrdr models' 'list show download delete alias tag'" in script
    if shutil.which("zsh"):
        path = tmp_path / "_ktrdr"
        path.write_text(script)
        done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    words = command_words(build_parser())
    assert "completion" in words["ktrdr"][0] and "--debug" in words["ktrdr"][1]


def test_a_closed_pipe_is_quiet() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ktrdr", "completion", "bash"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything was written (`| head`)
    err = process.stderr.read().decode()
    assert process.wait(timeout=scaled(120)) == 141
    assert err == ""


def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    done = ktrdr("backend", "serve", "--address", "127.0.0.1:99999", "--data-dir", str(tmp_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "port 0..65535" in lines[0]
    done = ktrdr(
        "backend", "serve", "--data-dir", str(tmp_path), env={"TRAINING_DEFAULT_MODE": "bogus"}
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "TRAINING_DEFAULT_MODE" in lines[0] and "'auto', 'local' or 'host'" in lines[0]
    done = ktrdr("models", "show", "no such model!", "--backend", "127.0.0.1:1")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
