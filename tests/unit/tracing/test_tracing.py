"""Tracing's pieces in one process: the OTEL_* rule, W3C context in and out (a malformed
``traceparent`` starts a new trace and is never repeated), the server span's parent, step
spans from the executor's progress events, trace ids on JSON log lines."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ktrdr import log_format
from ktrdr.tracing import TracingConfigError, from_env, grpc_spans, otel
from ktrdr.tracing.steps import StepSpans
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.worker import child

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MALFORMED = [
    "garbage",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
    VALID + "-" + "x" * 5000,
    "",
]

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if not getattr(provider, "_ktrdr_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._ktrdr_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


# -- the rule -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
        {"OTEL_SERVICE_NAME": "x"},  # a name alone exports nowhere
    ],
)
def test_off_unless_an_exporter_or_endpoint_is_configured(env: dict[str, str]):
    assert from_env("ktrdr-backend", env) is None


def test_on_with_an_endpoint_or_the_otlp_exporter():
    on = from_env("ktrdr-host", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"})
    assert on is not None and on.service_name == "ktrdr-host" and on.endpoint == "http://c:4317"
    on = from_env("ktrdr-host", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "gpu-1"})
    assert on is not None and on.service_name == "gpu-1"
    assert on.endpoint == "http://localhost:4317"  # the exporter's own default


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "only 'otlp'"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "only 'otlp'"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "only 'grpc'",
        ),
    ],
)
def test_a_setup_it_cannot_export_with_is_an_error(env: dict[str, str], says: str):
    with pytest.raises(TracingConfigError, match=says):
        from_env("ktrdr-backend", env)


# -- context in and out -------------------------------------------------------------------
@pytest.mark.parametrize(("value", "reads"), [("", False), ("false", False), (" TRUE ", True)])
def test_reads_are_recorded_only_when_asked(value: str, reads: bool):
    env = {"OTEL_TRACES_EXPORTER": "otlp", "KTRDR_TRACE_READS": value}
    settings = from_env("svc", env)
    assert settings is not None and settings.reads is reads


def test_a_reads_setting_that_is_not_true_or_false_is_an_error():
    env = {"OTEL_TRACES_EXPORTER": "otlp", "KTRDR_TRACE_READS": "yes"}
    with pytest.raises(TracingConfigError, match="KTRDR_TRACE_READS='yes': say true"):
        from_env("svc", env)


def test_the_carrier_names_the_current_span(spans: InMemorySpanExporter):
    with otel.span("outer") as outer:
        carrier = otel.carrier()
    context = outer.get_span_context()
    assert otel.extract_ids(carrier) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )
    assert otel.carrier() == {}  # outside any span: nothing to continue


def test_a_valid_traceparent_parses():
    assert otel.extract_ids({"traceparent": VALID}) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_traceparent_is_no_context(value: str):
    assert otel.extract_ids({"traceparent": value}) is None


def test_only_text_w3c_headers_are_taken_from_metadata():
    metadata = (("traceparent", VALID), ("x-other", "1"), ("tracestate", "a=b"), ("b", b"\x00"))
    assert grpc_spans._incoming(metadata) == {"traceparent": VALID, "tracestate": "a=b"}
    assert grpc_spans._incoming((("traceparent", VALID.encode()),)) == {}


class _Context:
    """What the server span reads of a ``grpc.aio.ServicerContext`` after the call."""

    def __init__(self, code: grpc.StatusCode | None = None) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return ""


def _serve_once(parent: dict[str, str]) -> Any:
    seen: dict[str, Any] = {}

    async def behavior(request: Any, context: Any) -> str:
        seen["current"] = trace.get_current_span().get_span_context()
        return "answer"

    wrapped = grpc_spans._wrap(behavior, "/ktrdr.training.v1.Backend/CreateTraining", parent)
    assert asyncio.run(wrapped(None, _Context())) == "answer"
    return seen["current"]


def test_the_server_span_continues_a_valid_traceparent(spans: InMemorySpanExporter):
    current = _serve_once({"traceparent": VALID})
    (span,) = spans.get_finished_spans()
    assert span.name == "/ktrdr.training.v1.Backend/CreateTraining"
    assert span.kind is trace.SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert current.span_id == span.context.span_id  # the servicer runs under it


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_traceparent_starts_a_new_trace(spans: InMemorySpanExporter, value: str):
    _serve_once({"traceparent": value})
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id != int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
    assert not value or value not in json.dumps(dict(span.attributes or {}))  # not repeated


def test_a_failed_call_marks_its_server_span(spans: InMemorySpanExporter):
    async def behavior(request: Any, context: Any) -> None:
        raise RuntimeError("boom")

    wrapped = grpc_spans._wrap(behavior, "/s/M", {})
    with pytest.raises(RuntimeError):
        asyncio.run(wrapped(None, _Context()))
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR


# -- steps and logs -----------------------------------------------------------------------
def _step(kind: ProgressKind, number: int, name: str) -> ProgressEvent:
    return ProgressEvent(kind, step=number, step_name=name)


def test_step_spans_follow_the_executors_events(spans: InMemorySpanExporter):
    passed: list[ProgressEvent] = []
    with otel.span("worker") as worker:
        steps = StepSpans(passed.append)
        steps(_step(ProgressKind.STEP_STARTED, 1, "load data"))
        steps(ProgressEvent(ProgressKind.EPOCH, epoch=1))
        steps(_step(ProgressKind.STEP_FINISHED, 1, "load data"))
        steps(_step(ProgressKind.STEP_STARTED, 2, "indicators"))
        steps.close("TrainingCancelled: stop")
    assert len(passed) == 4  # every event still reaches the run's callback
    finished = {s.name: s for s in spans.get_finished_spans()}
    first, second = finished["Step 1: load data"], finished["Step 2: indicators"]
    for step in (first, second):
        assert step.parent is not None and step.parent.span_id == worker.get_span_context().span_id
    assert first.status.status_code is trace.StatusCode.UNSET
    assert second.status.status_code is trace.StatusCode.ERROR


def test_json_lines_carry_the_current_span(spans: InMemorySpanExporter):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    log_format.set_trace_ids(otel.current_ids)
    try:
        with otel.span("work") as current:
            inside = json.loads(log_format.JsonFormatter().format(record))
        outside = json.loads(log_format.JsonFormatter().format(record))
    finally:
        log_format.set_trace_ids(None)
    context = current.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside


class _Details:
    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self.method = method
        self.invocation_metadata = metadata


TRACED = (("traceparent", VALID),)


@pytest.mark.parametrize(
    ("method", "metadata", "reads", "traced"),
    [
        ("/ktrdr.training.v1.Backend/GetOperation", (), False, False),  # an untraced read
        ("/ktrdr.training.v1.Backend/GetOperation", (), True, False),
        ("/ktrdr.training.v1.Backend/GetOperation", TRACED, False, False),  # client span only
        ("/ktrdr.training.v1.Backend/ListModels", TRACED, False, False),
        ("/ktrdr.training.v1.Backend/GetOperation", TRACED, True, True),  # KTRDR_TRACE_READS
        ("/ktrdr.training.v1.Backend/CancelOperation", TRACED, False, True),  # not a read
        ("/ktrdr.training.v1.Backend/DownloadModel", TRACED, False, True),
        ("/ktrdr.training.v1.Backend/CancelOperation", (), False, False),
        ("/ktrdr.training.v1.Backend/CreateTraining", (), False, True),  # starts work: always
        ("/ktrdr.training.v1.TrainingHost/StartTraining", (), False, True),
        ("/grpc.health.v1.Health/Check", TRACED, True, False),
        ("/ktrdr.training.v1.Backend/HostHeartbeat", TRACED, True, False),
    ],
)
def test_which_calls_get_a_server_span(
    spans: InMemorySpanExporter,
    method: str,
    metadata: tuple[tuple[str, str], ...],
    reads: bool,
    traced: bool,
):
    async def behavior(request: Any, context: Any) -> str:
        return "answer"

    handler = grpc.unary_unary_rpc_method_handler(behavior)

    async def continuation(_: Any) -> grpc.RpcMethodHandler:
        return handler

    async def call() -> Any:
        wrapped = await grpc_spans.ServerSpans(reads=reads).intercept_service(
            continuation,
            _Details(method, metadata),  # type: ignore[arg-type]
        )
        return await wrapped.unary_unary(None, _Context())

    assert asyncio.run(call()) == "answer"
    assert [s.name for s in spans.get_finished_spans()] == ([method] if traced else [])


# -- warm workers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "imports"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, False),  # refused when the run starts tracing
    ],
)
def test_a_waiting_worker_imports_the_exporter_only_when_tracing_is_on(
    env: dict[str, str], imports: bool
):
    names = child.tracing_imports(env)
    assert names == (child.TRACING_IMPORTS if imports else ())
    for name in names:  # modules that exist (prepare() ignores an ImportError)
        assert importlib.util.find_spec(name) is not None, name
