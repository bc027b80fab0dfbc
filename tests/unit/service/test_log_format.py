"""JSON log lines (``ktrdr.log_format``) and the settings that turn metrics and JSON on."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from pydantic import ValidationError

from ktrdr.backend.settings import BackendSettings
from ktrdr.log_format import (
    LOG_FORMAT_ENV,
    JsonFormatter,
    configure,
    inherited_format,
    operation_context,
    set_operation_id,
)
from ktrdr.security.tls import SecurityConfigError
from ktrdr.service.metrics import MetricsEndpoint, new_registry
from ktrdr_host.settings import HostSettings


def logged(emit, formatter: logging.Formatter | None = None) -> list[dict[str, object]]:
    """What ``emit(logger)`` logs, each line parsed as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or JsonFormatter())
    logger = logging.getLogger("tests.log_format")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_object_per_line_with_the_fixed_fields():
    def emit(log: logging.Logger) -> None:
        log.warning("two\nlines %s", "and an argument")

    (entry,) = logged(emit)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "tests.log_format"
    assert entry["message"] == "two\nlines and an argument"  # escaped: still one line
    assert str(entry["time"]).endswith("+00:00")
    assert "operation_id" not in entry and "exception" not in entry
    assert "trace_id" not in entry and "span_id" not in entry


def test_exception_text_and_trace_fields_when_given():
    def emit(log: logging.Logger) -> None:
        try:
            raise ValueError("broken")
        except ValueError:
            log.exception("it failed", extra={"trace_id": "abc", "span_id": "def"})

    (entry,) = logged(emit)
    assert "ValueError: broken" in str(entry["exception"])
    assert (entry["trace_id"], entry["span_id"]) == ("abc", "def")


def test_operation_id_from_the_context_also_in_tasks_and_threads():
    def emit(log: logging.Logger) -> None:
        with operation_context("op-1"):
            log.info("inside")

            async def task() -> None:
                log.info("in a task")
                await asyncio.to_thread(log.info, "in its thread")

            asyncio.run(task())
        log.info("outside")

        async def tagged_task() -> None:
            set_operation_id("op-2")
            log.info("set in the task")

        asyncio.run(tagged_task())
        log.info("not leaked")

    ids = [entry.get("operation_id") for entry in logged(emit)]
    assert ids == ["op-1", "op-1", "op-1", None, "op-2", None]


def test_configure_replaces_the_handlers_and_tells_workers(monkeypatch):
    root = logging.getLogger()
    saved = list(root.handlers)
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    try:
        configure("json")
        assert [type(h.formatter) for h in root.handlers] == [JsonFormatter]
        assert inherited_format() == "json"
        with pytest.raises(ValueError, match="not one of text, json"):
            configure("yaml")  # type: ignore[arg-type]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        logging.captureWarnings(False)
    monkeypatch.setenv(LOG_FORMAT_ENV, "something else")
    assert inherited_format() == "text"


def test_settings_off_by_default_and_checked(monkeypatch):
    for name in ("KTRDR_BACKEND_METRICS_ADDRESS", "KTRDR_BACKEND_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    settings = BackendSettings()
    assert (settings.metrics_address, settings.log_format) == ("", "text")
    monkeypatch.setenv("KTRDR_HOST_LOG_FORMAT", "JSON")
    monkeypatch.setenv("KTRDR_HOST_METRICS_ADDRESS", "127.0.0.1:9464")
    host = HostSettings()
    assert (host.log_format, host.metrics_address) == ("json", "127.0.0.1:9464")
    for bad in ("9464", "127.0.0.1:99999", ":9464"):
        with pytest.raises(ValidationError, match="expected HOST:PORT"):
            BackendSettings(metrics_address=bad)
    with pytest.raises(ValidationError, match="log_format"):
        BackendSettings(log_format="yaml")


def test_a_non_loopback_metrics_address_is_refused_without_the_setting():
    endpoint = MetricsEndpoint(new_registry("backend"), "backend")
    with pytest.raises(SecurityConfigError, match="KTRDR_BACKEND_METRICS_ALLOW_REMOTE=true"):
        endpoint.start("0.0.0.0:0", allow_remote=False, prefix="KTRDR_BACKEND_")
    assert endpoint.port == 0  # refused before any bind
