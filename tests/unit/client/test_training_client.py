"""TrainingClient without a backend: an unreachable address is named, strategy sources are
read (against a fake Backend servicer: ``tests/integration/client/test_training_client.py``)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from ktrdr.client import (
    KtrdrClientError,
    KtrdrServiceError,
    TrainingClient,
)
from ktrdr.client.local_services import free_port
from ktrdr.client.training_client import strategy_source
from tests.support.timing import scaled


def test_unreachable_backend_names_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(KtrdrServiceError) as info:
        TrainingClient(address, timeout_s=scaled(2)).strategies()
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert address in str(info.value)


def test_strategy_source(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: x\n")
    assert strategy_source(path) == {"strategy_yaml": "name: x\n"}
    assert strategy_source(str(path)) == {"strategy_yaml": "name: x\n"}
    assert strategy_source("name: y\nversion: 1\n") == {"strategy_yaml": "name: y\nversion: 1\n"}
    assert strategy_source("rsi_single") == {"strategy_name": "rsi_single"}
    with pytest.raises(KtrdrClientError, match="does not exist"):
        strategy_source("missing.yaml")
