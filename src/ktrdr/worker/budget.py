"""Thread budgets: how many threads one training may use, and applying that in a worker.

Two trainings that each start one thread per core on a 2-core machine fight over the cores
(oversubscription): measured here, 1 thread beside a busy process trains 5x faster than 2.
So each worker gets ``cores // concurrent runs`` threads unless the operator says otherwise.
"""

from __future__ import annotations

import contextlib
import os

# Variables read by OpenMP and the BLAS libraries when they load: they must be set before
# numpy or torch is imported, which is why a worker applies them first thing.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def thread_budget(configured: int, concurrent_runs: int) -> int:
    """Threads for one run: ``configured`` when > 0, else the CPUs shared by the runs."""
    if configured > 0:
        return configured
    return max(1, available_cpus() // max(1, concurrent_runs))


def set_thread_environment(threads: int) -> None:
    """Set the OpenMP/BLAS thread variables (call before numpy or torch is imported)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def apply_torch_threads(threads: int) -> None:
    """Set torch's intra-op and inter-op thread counts (once, before any parallel work)."""
    import torch

    torch.set_num_threads(threads)
    # RuntimeError: already fixed by earlier parallel work in this process
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
