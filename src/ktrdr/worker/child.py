"""The worker process's side: wait for one request, train, send the outcome, exit.

A worker is a fresh interpreter (never forked from a process with gRPC threads) and may be started
ahead of time as a spare: it applies its thread budget, imports the training stack while it
waits, then runs exactly one request and exits, so no state leaks from one run to the next.

Messages on the events pipe, worker -> service (tuples; the pipe is a private socket pair
between two processes of the same service, so pickle is safe here):
``("ready",)``, ``("progress", ProgressEvent)``, ``("result", WorkerOutcome)``,
``("cancelled", reason)``, ``("error", TrainingError)``, ``("crash", text)``.
Messages on the control pipe, service -> worker: ``("run", WorkerRequest)``,
``("cancel", reason)``. The control pipe closing (the service stopped or died) cancels the
run, and a worker that does not stop within ``ORPHAN_GRACE_S`` of that exits hard.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from ktrdr.log_format import formatter, inherited_format
from ktrdr.worker.budget import apply_torch_threads, set_thread_environment

logger = logging.getLogger(__name__)

ORPHAN_GRACE_S = 10.0
# Modules a training imports only when it runs (reading CSV with Arrow, TA-Lib's functions).
_RUN_IMPORTS = (
    "encodings.utf_8_sig",
    "pyarrow.csv",
    "pyarrow.pandas_compat",
    "talib",
    "talib.abstract",
)

TRACING_IMPORTS = ("ktrdr.tracing.otel", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter")


def worker_main(threads: int, events: Connection, control: Connection, log_level: int) -> None:
    """Entry point of a spawned worker process."""
    prepare(threads, log_level)
    serve_one(events, control)


def prepare(threads: int, log_level: int, *, warm_threads: int | None = None) -> None:
    """Thread budget, imports and torch's first-use costs: everything before a request.

    ``warm_threads`` (the forkserver's 1) is the torch thread count during the warm-up when
    it differs from the run's: a process that forks workers must not have started an OpenMP
    team, so it warms up on one thread and each forked worker sets ``threads`` itself.
    """
    set_thread_environment(threads)  # before numpy/torch load their thread pools
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the service's to handle
    # The service's format (KTRDR_LOG_FORMAT): a worker writes to the service's stderr.
    handler = logging.StreamHandler()
    handler.setFormatter(
        formatter(inherited_format(), "%(levelname)s worker %(process)d %(message)s")
    )
    logging.basicConfig(level=log_level, handlers=[handler])
    apply_torch_threads(threads)
    if warm_threads is not None:
        import torch

        torch.set_num_threads(warm_threads)  # intra-op only: the run sets its own again
    from ktrdr.training import executor as _executor  # noqa: F401  (warm the imports)
    from ktrdr.worker import entry as _entry  # noqa: F401

    for name in (*_RUN_IMPORTS, *tracing_imports()):  # what a run imports on first use
        with contextlib.suppress(ImportError):  # (a forked worker inherits them)
            importlib.import_module(name)
    _warm_up()


def tracing_imports(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The OpenTelemetry modules a traced run's ``worker`` span needs, when the service's
    ``OTEL_*`` variables (inherited) turn tracing on: imported while the worker waits, not
    on the run's time (~0.2 s). Nothing is started: the run starts tracing itself."""
    from ktrdr.tracing import TracingConfigError, from_env

    try:
        on = from_env("ktrdr-worker", env) is not None
    except TracingConfigError:
        return ()  # the run reports it
    return TRACING_IMPORTS if on else ()


def serve_one(events: Connection, control: Connection, threads: int | None = None) -> None:
    """Say ready, wait for one request, run it, send the outcome. ``threads``: set torch's
    intra-op threads first (a forked worker; a spawned one has them already)."""
    from ktrdr.worker.entry import run_request

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    _send(events, ("ready",))
    try:
        message = control.recv()
    except (EOFError, OSError):
        return  # a spare that was never used: the service stopped
    if message[0] != "run":
        return
    request = message[1]

    from ktrdr.training.cancellation import CancellationToken

    token = CancellationToken()
    threading.Thread(target=_watch_control, args=(control, token), daemon=True).start()

    def progress(event: Any) -> None:
        _send(events, ("progress", event))

    try:
        outcome = run_request(request, progress, token, flush_traces=False)
    except BaseException as exc:  # everything leaves as a message, never as a traceback
        _send(events, _failure(exc))
    else:
        _send(events, ("result", outcome))
    finally:
        from ktrdr import tracing

        tracing.flush()  # the run's spans, after its answer: the service does not wait for it


def _warm_up() -> None:
    """Pay torch's first-use costs while waiting: the first optimizer step of a process
    loads more of torch (about 1.5 s here), which a spare should not leave to the user's run.
    The run seeds every generator itself, so this leaves no trace in its results."""
    import torch
    from torch import nn

    model = nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(model(torch.zeros(2, 4)), torch.zeros(2, dtype=torch.long))
    loss.backward()
    optimizer.step()


def _watch_control(control: Connection, token: Any) -> None:
    """Turn a cancel message, or the service going away, into the run's cancellation."""
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            token.cancel("the service that started this training stopped")
            threading.Timer(ORPHAN_GRACE_S, os._exit, args=(3,)).start()
            return
        if message and message[0] == "cancel":
            token.cancel(str(message[1]))


def _failure(exc: BaseException) -> tuple[str, Any]:
    from ktrdr.errors import TrainingCancelled, TrainingError

    if isinstance(exc, TrainingCancelled):
        return ("cancelled", str(exc))
    if isinstance(exc, TrainingError):
        try:
            pickle.loads(pickle.dumps(exc))  # it must arrive as itself
            return ("error", exc)
        except Exception:
            return ("error", TrainingError(str(exc)))
    logger.error("training crashed:\n%s", "".join(traceback.format_exception(exc)))
    return ("crash", f"{type(exc).__name__}: {exc}")


def _send(events: Connection, message: tuple[Any, ...]) -> None:
    # the service is gone: the control watcher ends the run
    with contextlib.suppress(BrokenPipeError, EOFError, OSError):
        events.send(message)


if __name__ == "__main__":
    _threads, _events, _control, _level = (int(arg) for arg in sys.argv[1:5])
    worker_main(
        _threads,
        Connection(_events, readable=False, writable=True),
        Connection(_control, readable=True, writable=False),
        _level,
    )
