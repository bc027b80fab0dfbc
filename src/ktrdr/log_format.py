"""How the services and their worker processes write log lines: text (the default) or JSON.

``--log-format json`` (``KTRDR_BACKEND_LOG_FORMAT`` / ``KTRDR_HOST_LOG_FORMAT``) makes every line
one JSON object: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``exception``
(the traceback, when there is one) and ``operation_id`` while an operation's work runs
(``operation_context``; the backend's operation id is also the host's session id, so one id
follows a training across both services). ``trace_id`` and ``span_id``: the current span's
while tracing is on (``ktrdr.tracing`` installs the lookup), or those a record carries.

The format travels to worker processes in ``KTRDR_LOG_FORMAT``: a worker's lines go to the
service's stderr and must be the same format. Standard library only (workers import it).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
# Read by worker processes (inherited from the service's environment).
LOG_FORMAT_ENV = "KTRDR_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields beside the fixed ones, written when set on a record (``extra=``) or in the context.
TRACE_FIELDS = ("trace_id", "span_id")

_operation_id: contextvars.ContextVar[str] = contextvars.ContextVar("operation_id", default="")
# The current span's (trace id, span id), set by ktrdr.tracing while tracing is on.
_trace_ids: Callable[[], tuple[str, str]] | None = None


def set_trace_ids(lookup: Callable[[], tuple[str, str]] | None) -> None:
    """Where JSON lines find the current trace and span ids (None: nowhere)."""
    global _trace_ids
    _trace_ids = lookup


def current_operation_id() -> str:
    """The id of the operation whose work runs in this context ("" outside one)."""
    return _operation_id.get()


def set_operation_id(operation_id: str) -> None:
    """Tag this context (an asyncio task and what it starts, threads it hands work to)."""
    _operation_id.set(operation_id)


@contextlib.contextmanager
def operation_context(operation_id: str) -> Iterator[None]:
    """Lines logged inside carry ``operation_id``."""
    token = _operation_id.set(operation_id)
    try:
        yield
    finally:
        _operation_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        operation_id = getattr(record, "operation_id", "") or _operation_id.get()
        if operation_id:
            entry["operation_id"] = operation_id
        ids = _trace_ids() if _trace_ids is not None else ("", "")
        for name, current in zip(TRACE_FIELDS, ids, strict=True):
            value = getattr(record, name, "") or current
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        entry["process"] = record.process
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: LogFormat, text_format: str = TEXT_FORMAT) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(text_format)


def configure(log_format: LogFormat, *, level: int | None = None) -> None:
    """Give the root logger one stderr handler in ``log_format`` (replacing the others), and
    make worker processes started from now on use it too."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    os.environ[LOG_FORMAT_ENV] = log_format
    if log_format == "json":
        logging.captureWarnings(True)  # a warnings.warn line is a log line, not raw stderr


def inherited_format() -> LogFormat:
    """The format a worker process was started with (text unless its service said json)."""
    value = os.environ.get(LOG_FORMAT_ENV, "text")
    return "json" if value == "json" else "text"


__all__ = [
    "LOG_FORMATS",
    "LOG_FORMAT_ENV",
    "JsonFormatter",
    "LogFormat",
    "configure",
    "current_operation_id",
    "formatter",
    "inherited_format",
    "operation_context",
    "set_operation_id",
    "set_trace_ids",
]
