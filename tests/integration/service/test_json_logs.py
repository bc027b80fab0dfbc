"""``--log-format json`` with real processes: every line a backend and a host write (at start,
during a host training with its worker process, at stop) is one JSON object, and the lines
of the operation's work carry its id on both services.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from tests.support.processes import channel_to, start_backend, start_host
from tests.support.timing import scaled

pytestmark = pytest.mark.integration

JSON = {"KTRDR_BACKEND_LOG_FORMAT": "json", "KTRDR_HOST_LOG_FORMAT": "json"}


def json_lines(log: Path) -> list[dict[str, object]]:
    """Every line of ``log`` parsed (a line that is not JSON fails the test, named)."""
    entries = []
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{log.name} line {number} is not JSON: {line!r}") from None
        assert isinstance(entry, dict), line
        assert {"time", "level", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


def test_every_line_of_both_services_is_json(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
):
    host = start_host(tmp_path / "host", sample_data_dir, env=JSON)
    backend = None
    try:
        backend = start_backend(
            tmp_path / "backend", sample_data_dir, [host.address], default_mode="host", env=JSON
        )
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            request = pb.CreateTrainingRequest(
                strategy_yaml=tiny_strategy_yaml,
                overrides=common_pb2.TrainingOverrides(device="cpu"),
            )
            op = stub.CreateTraining(request, timeout=scaled(10)).operation
            watch = pb.WatchOperationRequest(operation_id=op.operation_id)
            last = list(stub.WatchOperation(watch, timeout=scaled(300)))[-1]
            assert last.status == pb.OPERATION_STATUS_COMPLETED, last
    finally:
        if backend is not None:
            backend.stop()
        host.stop()

    backend_lines, host_lines = json_lines(backend.log), json_lines(host.log)
    for lines, started, stopped in (
        (backend_lines, "backend serving on", "received: stopping"),
        (host_lines, "training host listening on", "host stopped"),
    ):
        messages = [str(e["message"]) for e in lines]
        assert any(m.startswith(started) for m in messages), messages
        assert any(stopped in m for m in messages), messages
        tagged = [e for e in lines if e.get("operation_id") == op.operation_id]
        assert tagged, f"no line carries operation_id {op.operation_id}: {messages}"
    delivered = [e for e in host_lines if str(e["message"]).startswith("delivered the model")]
    assert delivered and delivered[0].get("operation_id") == op.operation_id
