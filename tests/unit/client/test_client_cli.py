"""The ``ktrdr`` client commands that need no backend: help with an example for every command,
``--set`` checked before a local run (against a fake backend:
``tests/integration/client/test_client_cli.py``)."""

from __future__ import annotations

import pytest

from ktrdr.cli.main import main
from tests.support.cli import run


def test_every_command_has_help_with_example(capsys) -> None:
    commands = [
        ["train"],
        ["ops", "list"],
        ["ops", "show"],
        ["ops", "watch"],
        ["ops", "cancel"],
        ["models", "list"],
        ["models", "show"],
        ["models", "download"],
        ["models", "delete"],
        ["models", "alias"],
        ["models", "tag"],
        ["predict"],
        ["strategies", "list"],
        ["config", "show"],
        ["config", "set-default-mode"],
        ["host", "capabilities"],
    ]
    for command in commands:
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "example" in capsys.readouterr().out, command


def test_set_on_a_local_run_is_checked_first(capsys, example_strategies) -> None:
    strategy = str(example_strategies / "rsi_single.yaml")
    code, _, err = run(capsys, "train", strategy, "--local", "--set", "model.training.epochs")
    assert code == 2 and "PATH=VALUE" in err and err.count("\n") == 1
    code, _, err = run(capsys, "train", strategy, "--local", "--set", "model.training.epoks=3")
    assert code == 1 and "model.training.epoks: unknown key" in err and err.count("\n") == 1
