"""TrainingClient against a fake in-process Backend servicer on loopback."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from ktrdr.client import (
    KtrdrClientError,
    KtrdrServiceError,
    OperationFailedError,
    TrainingClient,
    TrainingResult,
    TrainingRun,
    frame,
)
from tests.support.timing import scaled


def test_train_returns_metrics_history_and_model(fake_backend, capsys) -> None:
    address, _ = fake_backend
    with TrainingClient(address) as client:
        result = client.train("fake_rsi", mode="local", seed=3, progress=False)
    assert isinstance(result, TrainingResult)
    assert result.ok and result.status == "completed" and result.mode == "local"
    assert result.metrics == {"test_accuracy": 0.6, "test_loss": 0.8}
    table = result.metrics_frame()
    assert table.loc["test_accuracy", "value"] == pytest.approx(0.6)
    assert list(result.history.index) == [1, 2, 3]  # from metadata.json
    assert {"train_loss", "val_accuracy"} <= set(result.history.columns)
    assert result.model is not None and Path(result.model.path).is_dir()
    assert result.per_class_frame() is not None
    assert "test_accuracy=0.6000" in repr(result)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # progress=False is silent


def test_history_falls_back_to_epoch_events(fake_backend) -> None:
    address, _ = fake_backend
    client = TrainingClient(address)
    result = client.train("fake_rsi", progress=False)
    assert result.model is not None
    (Path(result.model.path) / "metadata.json").unlink()
    fresh = TrainingResult(result.operation, result.epoch_events)
    assert list(fresh.history.index) == [1.0, 2.0, 3.0]
    assert fresh.history["train_loss"].iloc[0] == pytest.approx(1.0)


def test_request_carries_mode_overrides_and_yaml(fake_backend, tmp_path: Path) -> None:
    address, servicer = fake_backend
    strategy = tmp_path / "s.yaml"
    strategy.write_text("name: fake_rsi\n")
    TrainingClient(address).train(
        strategy,
        symbols=["EURUSD"],
        start="2020-01-01",
        mode="host",
        seed=11,
        progress=False,
    )
    request = servicer.requests[-1]
    assert request.strategy_yaml == "name: fake_rsi\n"
    assert request.execution_mode == 3  # EXECUTION_MODE_HOST
    assert list(request.overrides.symbols) == ["EURUSD"]
    assert request.overrides.seed == 11 and request.overrides.start_date == "2020-01-01"


def test_progress_lines_on_stderr_when_not_a_terminal(fake_backend, capsys) -> None:
    address, _ = fake_backend
    TrainingClient(address).train("fake_rsi")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[  1.0%] training: step 1/11 load data"
    assert "epoch 3/3 train_loss=0.3333" in err[-2] and err[-1].endswith("completed")


def test_progress_bars(fake_backend) -> None:
    import io

    from ktrdr.client import ProgressDisplay

    address, _ = fake_backend
    out = io.StringIO()
    display = ProgressDisplay(file=out, bars=True)
    TrainingClient(address).watch(
        TrainingClient(address).create_training("fake_rsi").operation_id,
        progress=False,
        on_event=display,
    )
    text = out.getvalue()
    assert "epochs" in text and "3/3" in text and "training: completed" in text
    assert display.last_metrics["train_loss"] == pytest.approx(1 / 3)


def test_server_error_becomes_exception_with_status(fake_backend) -> None:
    address, _ = fake_backend
    client = TrainingClient(address)
    with pytest.raises(KtrdrServiceError) as info:
        client.train("invalid", progress=False)
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "model.training.epochs" in info.value.message
    with pytest.raises(KtrdrServiceError) as info:
        client.operation("nope")
    assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_detached_run_wait_and_cancel(fake_backend) -> None:
    address, servicer = fake_backend
    client = TrainingClient(address)
    servicer.hold.clear()
    run = client.train("fake_rsi", wait=False)
    assert isinstance(run, TrainingRun) and run.operation.status == "running"
    waited: list[TrainingResult] = []
    thread = threading.Thread(target=lambda: waited.append(run.wait(progress=False, check=False)))
    thread.start()
    assert run.cancel().status == "cancelled"
    thread.join(10)
    assert waited and waited[0].status == "cancelled"
    with pytest.raises(OperationFailedError, match="cancelled"):
        waited[0].raise_for_status()


def test_queries_default_mode_and_frames(fake_backend) -> None:
    import pandas as pd

    address, _ = fake_backend
    client = TrainingClient(address)
    for _ in range(3):
        client.train("fake_rsi", progress=False)
    assert [op.operation_id for op in client.operations(limit=2)] == ["op-3", "op-2"]
    assert len(client.operations(limit=None)) == 3
    assert len(client.operations(status="completed", strategy="fake_rsi")) == 3
    models = client.models()
    assert [m.version for m in models] == [1, 2, 3]
    assert client.model("fake_rsi").version == 3
    with pytest.raises(KtrdrClientError, match="no version 9"):
        client.model("fake_rsi", 9)
    assert isinstance(frame(models), pd.DataFrame) and "test_accuracy" in frame(models)
    assert [s.status for s in client.strategies()] == ["trained", "untrained"]
    assert client.default_mode == "auto"
    client.default_mode = "host"
    assert client.default_mode == "host"
    assert client.set_default_mode("local") == ("host", "local")
    assert client.health() == "SERVING"
    with pytest.raises(ValueError, match="unknown mode"):
        client.default_mode = "gpu"


def test_stub_is_exposed(fake_backend) -> None:
    from ktrdr.training.v1 import backend_pb2

    address, _ = fake_backend
    response = TrainingClient(address).backend_stub.GetTrainingConfig(
        backend_pb2.GetTrainingConfigRequest(), timeout=scaled(5)
    )
    assert response.config.default_mode == backend_pb2.EXECUTION_MODE_AUTO


def test_download_resumes_after_the_stream_breaks(fake_backend, tmp_path) -> None:
    address, servicer = fake_backend
    with TrainingClient(address) as client:
        result = client.train("fake_rsi", progress=False)
        servicer.break_downloads = [2, 1]  # two broken streams, then a whole one
        path = client.download_model("fake_rsi:1", cache_dir=tmp_path)
        assert (path / "metadata.json").read_bytes() == (
            Path(result.model.path) / "metadata.json"
        ).read_bytes()
        assert servicer.download_offsets == [0, 2048, 3072]  # each resumed where it stopped
        assert client.download_model("fake_rsi", cache_dir=tmp_path) == path  # cached
        assert servicer.download_offsets == [0, 2048, 3072]
        servicer.break_downloads = [0, 0, 0]
        with pytest.raises(KtrdrServiceError) as failed:  # gives up after 3 attempts
            client.download_model("fake_rsi:1", cache_dir=tmp_path / "other")
        assert failed.value.code.name == "UNAVAILABLE"


def test_fields_are_sent_as_json_values(fake_backend) -> None:
    address, servicer = fake_backend
    with TrainingClient(address) as client:
        client.create_training(
            "fake_rsi",
            fields={"model.training.learning_rate": 0.01, "indicators[0].source": "hl2"},
            set_fields=["model.architecture.hidden_layers=[8]"],
        )
        with pytest.raises(KtrdrClientError, match="PATH=VALUE"):
            client.create_training("fake_rsi", set_fields=["epochs"])
    sent = servicer.requests[-1].field_overrides
    assert [(f.path, f.value) for f in sent] == [
        ("model.training.learning_rate", "0.01"),
        ("indicators[0].source", '"hl2"'),
        ("model.architecture.hidden_layers", "[8]"),
    ]
