"""A service started by another program stops when that program is gone.

Programs that start ``ktrdr backend serve`` or ``ktrdr host serve`` as a child (``LocalServices``,
``make demo``, the tests) set ``KTRDR_EXIT_WITH_PARENT`` to their own process id. The service
checks every half second whether its parent is still that process; once it is not (the
parent exited, was interrupted or killed with SIGKILL), the service stops as on SIGTERM, a
second SIGTERM a moment later (the host then cancels running sessions instead of draining),
and exits at once if it still runs ``EXIT_AFTER_S`` later. Its worker processes follow: they
stop when the service's end of their pipe closes. The variable is removed from this
process's environment, so the service's own children do not inherit it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import MutableMapping

logger = logging.getLogger(__name__)

ENV_VAR = "KTRDR_EXIT_WITH_PARENT"
POLL_S = 0.5
SECOND_SIGNAL_AFTER_S = 2.0
EXIT_AFTER_S = 20.0


def parent_environment() -> dict[str, str]:
    """What a program adds to a service child's environment to be its watched parent."""
    return {ENV_VAR: str(os.getpid())}


def watch_parent_from_env(
    environ: MutableMapping[str, str] = os.environ,
) -> threading.Thread | None:
    """Start the watch if ``KTRDR_EXIT_WITH_PARENT`` names a process id; None otherwise."""
    raw = environ.pop(ENV_VAR, "")
    if not raw:
        return None
    try:
        parent = int(raw)
    except ValueError:
        logger.warning("%s=%r is not a process id; not watching the parent", ENV_VAR, raw)
        return None
    thread = threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True)
    thread.start()
    return thread


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    logger.warning("the process that started this service (pid %d) is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(SECOND_SIGNAL_AFTER_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(EXIT_AFTER_S)
    logger.error("still running %g s after its parent went away: exiting now", EXIT_AFTER_S)
    os._exit(1)
