"""OpenTelemetry traces with real processes: ``ktrdr train`` (the client), a backend and a host
(``ktrdr ... serve``) with tracing on towards an OTLP receiver on loopback; one host-mode
training makes ONE trace: the client's call, the backend's server span and operation, the
host's StartTraining and session, the worker process's span with a span per executor step,
and the delivery (SubmitResults on the host and on the backend), each under its caller.
With tracing off, the receiver hears nothing and the service never imports OpenTelemetry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr.training.progress import STEP_NAMES
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import ADMIN_TOKEN, REPO_ROOT, start_backend, start_host
from tests.support.timing import scaled, wait_until

pytestmark = pytest.mark.integration

BACKEND_RPC = "/ktrdr.training.v1.Backend/"
HOST_RPC = "/ktrdr.training.v1.TrainingHost/"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def train(backend: str, strategy: Path, env: dict[str, str]) -> dict[str, object]:
    """``ktrdr train ... --mode host`` as a user runs it; its JSON answer."""
    command = [sys.executable, "-m", "ktrdr.cli.main", "train", str(strategy)]
    command += ["--backend", backend, "--mode", "host", "--token", ADMIN_TOKEN]
    done = subprocess.run(
        [*command, "--no-progress", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(300),
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def one(
    spans: list[ReceivedSpan], service: str, name: str, kind: int | None = None
) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.name == name and kind in (None, s.kind)]
    names = sorted({(s.service, s.name) for s in spans})
    assert len(found) == 1, f"{service} {name}: {len(found)} span(s) among {names}"
    return found[0]


def test_one_trace_across_client_backend_host_worker_and_delivery(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str, receiver: OtlpReceiver
):
    env = {**receiver.env(), "KTRDR_BACKEND_LOG_FORMAT": "json", "KTRDR_HOST_LOG_FORMAT": "json"}
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    host = start_host(tmp_path / "host", sample_data_dir, env=env)
    backend = None
    try:
        backend = start_backend(
            tmp_path / "backend", sample_data_dir, [host.address], default_mode="host", env=env
        )
        answer = train(backend.address, strategy, receiver.env())
        operation_id = answer.get("operation_id")

        def delivered() -> bool:
            names = {(s.service, s.name) for s in receiver.received()}
            return ("ktrdr-backend", BACKEND_RPC + "SubmitResults") in names

        wait_until(delivered, 120, "the backend's SubmitResults span")
    finally:
        if backend is not None:
            backend.stop()
        host.stop()

    spans = receiver.received()
    root = one(spans, "ktrdr-client", "train")
    assert root.parent_id == "", "the client's call starts the trace"
    trace = [s for s in spans if s.trace_id == root.trace_id]
    by_id = {s.span_id: s for s in trace}

    def under(child: ReceivedSpan, parent: ReceivedSpan) -> None:
        assert child.trace_id == root.trace_id, f"{child.service} {child.name}: another trace"
        assert child.parent_id == parent.span_id, (
            f"{child.service} {child.name} is under "
            f"{by_id.get(child.parent_id, child.parent_id)!r}, not {parent.service} {parent.name}"
        )

    create_client = one(trace, "ktrdr-client", BACKEND_RPC + "CreateTraining", CLIENT)
    under(create_client, root)
    create_server = one(trace, "ktrdr-backend", BACKEND_RPC + "CreateTraining", SERVER)
    under(create_server, create_client)
    operation = one(trace, "ktrdr-backend", "operation")
    under(operation, create_server)
    if operation_id:
        assert operation.attributes.get("ktrdr.operation_id") == operation_id
    start_client = one(trace, "ktrdr-backend", HOST_RPC + "StartTraining", CLIENT)
    under(start_client, operation)
    start_server = one(trace, "ktrdr-host", HOST_RPC + "StartTraining", SERVER)
    under(start_server, start_client)
    session = one(trace, "ktrdr-host", "session")
    under(session, start_server)
    worker = one(trace, "ktrdr-worker", "worker")
    under(worker, session)
    for number, name in enumerate(STEP_NAMES, start=1):
        step = one(trace, "ktrdr-worker", f"Step {number}: {name}")
        under(step, worker)
        assert not step.error
    deliver = one(trace, "ktrdr-host", "deliver results")
    under(deliver, session)
    submit_client = one(trace, "ktrdr-host", BACKEND_RPC + "SubmitResults", CLIENT)
    under(submit_client, deliver)
    submit_server = one(trace, "ktrdr-backend", BACKEND_RPC + "SubmitResults", SERVER)
    under(submit_server, submit_client)
    assert not [s for s in spans if s.trace_id == root.trace_id and s.error]

    # JSON log lines of the operation's work carry the trace they belong to.
    for log in (backend.log, host.log):
        ids = set()
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("operation_id") and entry.get("trace_id"):
                ids.add(entry["trace_id"])
        assert root.trace_id in ids, f"{log.name}: no line with the trace id"


OFF_PROBE = """
import asyncio, json, sys
from ktrdr.backend.server import BackendApp
from ktrdr.backend.settings import BackendSettings
from ktrdr.client import TrainingClient

async def main(data, market, yaml_text):
    settings = BackendSettings(address="127.0.0.1:0", data_dir=data, market_data_dir=market,
                               device="cpu", insecure_no_auth=True, default_mode="local")
    app = BackendApp(settings)
    port = await app.start()
    try:
        def run():
            with TrainingClient(f"127.0.0.1:{port}", token=None) as client:
                return client.train(yaml_text, mode="local", progress=False).operation_id
        await asyncio.to_thread(run)
    finally:
        await app.stop()
    print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))

asyncio.run(main(sys.argv[1], sys.argv[2], open(sys.argv[3]).read()))
"""


def test_tracing_off_imports_nothing_and_sends_nothing(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str, receiver: OtlpReceiver
):
    """An endpoint set but OTEL_TRACES_EXPORTER=none: off. A backend and a client in one
    process train locally (in a worker process): no OpenTelemetry module is imported and the
    receiver gets no request."""
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    env = {**receiver.env(), "OTEL_TRACES_EXPORTER": "none"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            OFF_PROBE,
            str(tmp_path / "data"),
            str(sample_data_dir),
            str(strategy),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(300),
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert receiver.requests == 0
