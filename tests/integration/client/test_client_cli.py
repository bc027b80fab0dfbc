"""The client commands of ``ktrdr`` against a fake backend on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from ktrdr.client.local_services import free_port
from tests.support.cli import run


def test_train_prints_metrics_and_model(fake_backend, capsys) -> None:
    address, _ = fake_backend
    code, out, err = run(capsys, "train", "fake_rsi", "--backend", address, "--mode", "local")
    assert code == 0, err
    assert "test accuracy  0.6000" in out and "model saved:" in out
    assert "fake_rsi: trained on" in out and "locally in the backend" in out
    assert "trading on the test period (60 bars" in out and "  verdict: " in out
    assert "operation op-1: running, mode local" in err and "epoch 3/3" in err


def test_train_detach_and_json(fake_backend, capsys) -> None:
    address, _ = fake_backend
    code, out, _ = run(capsys, "train", "fake_rsi", "--backend", address, "--detach")
    assert code == 0 and out.strip() == "op-1"
    code, out, _ = run(capsys, "train", "fake_rsi", "--backend", address, "--json")
    data = json.loads(out)
    assert data["status"] == "completed" and data["model"]["version"] == 1


def test_env_address_is_used(fake_backend, capsys, monkeypatch) -> None:
    address, _ = fake_backend
    monkeypatch.setenv("KTRDR_BACKEND_ADDRESS", address)
    code, out, _ = run(capsys, "strategies", "list")
    assert code == 0 and "fake_rsi" in out and "untrained" in out


def test_errors_are_one_line(fake_backend, capsys) -> None:
    address, _ = fake_backend
    code, _, err = run(capsys, "train", "invalid", "--backend", address)
    assert code == 1 and err.count("\n") == 1 and "INVALID_ARGUMENT" in err
    code, _, err = run(capsys, "ops", "show", "nope", "--backend", address)
    assert code == 1 and err.startswith("error: NOT_FOUND")
    dead = f"127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "ops", "list", "--backend", dead, "--timeout", "2")
    assert code == 1 and dead in err and err.count("\n") == 1
    code, _, err = run(capsys, "train", "x.yaml", "--local", "--mode", "host")
    assert code == 2 and "--mode" in err


def test_ops_commands(fake_backend, capsys) -> None:
    address, servicer = fake_backend
    run(capsys, "train", "fake_rsi", "--backend", address, "--no-progress")
    code, out, _ = run(capsys, "ops", "list", "--backend", address)
    assert code == 0 and "op-1" in out and "completed" in out
    code, out, _ = run(capsys, "ops", "list", "--backend", address, "--json", "--status", "failed")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "ops", "show", "op-1", "--backend", address)
    assert "fake: always local" in out
    code, out, _ = run(capsys, "ops", "watch", "op-1", "--backend", address, "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["kind"] == "PROGRESS_KIND_COMPLETED"
    code, _, err = run(capsys, "ops", "cancel", "op-1", "--backend", address)
    assert code == 1 and "FAILED_PRECONDITION" in err
    servicer.hold.clear()
    run(capsys, "train", "fake_rsi", "--backend", address, "--detach")
    code, out, _ = run(capsys, "ops", "cancel", "op-2", "--backend", address, "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled"


def test_models_and_config(fake_backend, capsys, tmp_path: Path) -> None:
    address, _ = fake_backend
    run(capsys, "train", "fake_rsi", "--backend", address, "--no-progress")
    code, out, _ = run(capsys, "models", "list", "--backend", address)
    assert code == 0 and "fake_rsi" in out and "0.6000" in out
    plot = tmp_path / "p.png"
    code, out, err = run(
        capsys, "models", "show", "fake_rsi:1", "--backend", address, "--plot", str(plot)
    )
    assert code == 0, err
    assert plot.read_bytes()[:4] == b"\x89PNG" and "BUY" in out
    assert "trading on the test period (60 bars, 5 bps per trade" in out
    for rule in ("strategy", "buy_and_hold", "majority", "flat"):
        assert any(line.split()[:2] == [rule, "return"] for line in out.splitlines()), rule
    assert "  verdict: " in out
    assert "coverage warning: fuzzy set rsi.oversold is active on 0.50% of bars" in out
    model_dir = json.loads(run(capsys, "models", "list", "--backend", address, "--json")[1])[0][
        "path"
    ]
    code, out, _ = run(capsys, "models", "show", model_dir, "--json")
    shown = json.loads(out)
    assert code == 0 and len(shown["history"]) == 3
    assert shown["trading"]["verdict"]["text"] and "equity_curve" not in shown["trading"]
    assert shown["coverage_warnings"] == ["fuzzy set rsi.oversold is active on 0.50% of bars"]
    code, _, err = run(capsys, "models", "show", "fake_rsi:7", "--backend", address)
    assert code == 1 and "no version 7" in err
    code, out, _ = run(capsys, "config", "show", "--backend", address, "--json")
    assert json.loads(out)["default_mode"] == "auto"
    code, out, _ = run(capsys, "config", "set-default-mode", "host", "--backend", address)
    assert code == 0 and "auto -> host" in out


def test_set_sends_field_overrides_as_written(fake_backend, capsys) -> None:
    address, servicer = fake_backend
    code, _, err = run(
        capsys,
        "train",
        "fake_rsi",
        "--backend",
        address,
        "--detach",
        "--set",
        "model.training.learning_rate=0.01",
        "--set",
        "model.architecture.hidden_layers=[64, 32]",
    )
    assert code == 0, err
    sent = servicer.requests[-1].field_overrides
    assert [(f.path, f.value) for f in sent] == [
        ("model.training.learning_rate", "0.01"),
        ("model.architecture.hidden_layers", "[64, 32]"),
    ]
