"""Training in a process of its own, with an explicit thread budget.

The services (backend local runs, host sessions) never train in their own process: a
``ProcessExecutor`` hands each run to a freshly spawned worker process that sets its torch,
OpenMP and BLAS threads from a budget, runs the library's unchanged ``TrainingExecutor``
through the one worker-side entry point (``run_request``), streams its progress events back
over a pipe, obeys cancellation, and returns the bundle as archive bytes. A worker that dies
fails its run with a message that says so.

May import the training library (lazily, in the worker) and the standard library; never
gRPC or generated code.
"""

from __future__ import annotations

from ktrdr.worker.budget import available_cpus, thread_budget
from ktrdr.worker.entry import TrainingRunner, WorkerOutcome, WorkerRequest, run_request
from ktrdr.worker.process import ProcessExecutor, SparePool

__all__ = [
    "ProcessExecutor",
    "SparePool",
    "TrainingRunner",
    "WorkerOutcome",
    "WorkerRequest",
    "available_cpus",
    "run_request",
    "thread_budget",
]
