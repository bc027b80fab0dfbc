"""Warm workers: a forkserver that imports the training stack once and forks each worker.

A ``Forkserver`` is one fresh interpreter (``python -m ktrdr.worker.forkserver_main``, never a
fork of the service, which has gRPC and asyncio threads) that applies the pool's thread
budget, imports torch, pandas and the executor, pays torch's first-use costs on one thread
(so that no OpenMP team exists to be broken by a fork), then waits. For each run the service
passes it the two pipe ends of a new worker (``SCM_RIGHTS``); it forks, and the child, already
past every import, sets the run's torch threads and serves exactly one request
(``child.serve_one``) and exits, so runs share nothing: each is a fresh copy of the same
prepared process. A fork takes milliseconds where a spawned worker imports for seconds.

The forkserver is the workers' parent: it reaps them as they exit (SIGCHLD) and tells the
service how one ended (``status``) when a run lost its worker. The service holds a pidfd of
each worker, so it kills exactly that process, never a reused pid.

Control socket (``SOCK_SEQPACKET``, one message per request, lock-step):
``fork`` + 2 fds -> ``pid N``; ``status N`` -> ``status CODE`` (``status ?`` unknown).
``ready`` is sent once, unasked, when the imports are done. The socket closing (the service
stopped or died) ends the forkserver; workers already running finish their runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

from ktrdr.worker.budget import THREAD_VARIABLES
from ktrdr.worker.handle import STOP_GRACE_S, WorkerHandle

logger = logging.getLogger(__name__)

STATUS_WAIT_S = 5.0
MAX_STATUSES = 1024  # exit codes kept for the service to ask about (oldest dropped)
MESSAGE_BYTES = 64


class ForkserverGone(RuntimeError):
    """The forkserver is not running (it failed to start, or died)."""


def supported() -> bool:
    """Fork, fd passing and pidfds: Linux."""
    return (
        sys.platform == "linux"
        and hasattr(socket, "send_fds")
        and hasattr(os, "pidfd_open")
        and hasattr(signal, "pidfd_send_signal")
    )


class Forkserver:
    """The service's handle on one forkserver process of a given thread budget."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env.update({name: str(threads) for name in THREAD_VARIABLES})
        level = logging.getLogger().getEffectiveLevel()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ktrdr.worker.forkserver_main",
                    str(threads),
                    str(theirs.fileno()),
                    str(level),
                ],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._lock = threading.Lock()
        self._ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """True once the imports are done (False on timeout); ForkserverGone if it died."""
        with self._lock:
            if self._ready:
                return True
            readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
            if not readable:
                return False
            if self._sock.recv(MESSAGE_BYTES) != b"ready":
                raise ForkserverGone("the warm-worker forkserver exited while starting")
            self._ready = True
            return True

    def fork(self) -> ForkedWorker:
        """A new worker, forked from the prepared process (the forkserver must be ready)."""
        events_r, events_w = os.pipe()
        control_r, control_w = os.pipe()
        try:
            with self._lock:
                if not self._ready:
                    raise ForkserverGone("the warm-worker forkserver is not ready")
                try:
                    socket.send_fds(self._sock, [b"fork"], [events_w, control_r])
                    reply = self._sock.recv(MESSAGE_BYTES)
                except OSError:
                    reply = b""
            if not reply.startswith(b"pid "):
                raise ForkserverGone("the warm-worker forkserver stopped answering")
            pid = int(reply[4:])
        except BaseException:
            for fd in (events_r, control_w):
                os.close(fd)
            raise
        finally:
            os.close(events_w)  # the service keeps only its own ends, so EOF means "gone"
            os.close(control_r)
        return ForkedWorker(self, pid, events_r, control_w)

    def exit_code(self, pid: int) -> int | None:
        """How worker ``pid`` ended (as ``Popen.returncode``); None when not known."""
        with self._lock:
            try:
                self._sock.send(f"status {pid}".encode())
                reply = self._sock.recv(MESSAGE_BYTES)
            except OSError:
                return None
        with contextlib.suppress(ValueError):
            return int(reply.split()[1])
        return None

    def close(self) -> None:
        """End the forkserver (running workers finish their runs) and reap it."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_GRACE_S)


class ForkedWorker(WorkerHandle):
    """A worker forked by a ``Forkserver``, watched through a pidfd (exactly that process,
    never a reused pid)."""

    def __init__(self, server: Forkserver, pid: int, events_r: int, control_w: int) -> None:
        self.server = server
        self._pid = pid
        self.threads = server.threads
        self.events = Connection(events_r, writable=False)
        self.control = Connection(control_w, readable=False)
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (and reaped): death() says how
            self._pidfd = None

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        if self._pidfd is None:
            return False
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        return not readable

    def _wait_exit(self, timeout: float) -> bool:
        if self._pidfd is None:
            return True
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        return bool(readable)

    def _send_kill(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def _exit_code(self) -> int | None:
        return self.server.exit_code(self.pid)

    def _close_process_handle(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


# --------------------------------------------------------------------------- forkserver side


def serve(threads: int, sock: socket.socket, log_level: int) -> None:
    """The forkserver's main loop (in its own process)."""
    from ktrdr.worker import child

    child.prepare(threads, log_level, warm_threads=1)
    statuses: dict[int, int] = {}

    def reap(signum: int, frame: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            statuses[pid] = os.waitstatus_to_exitcode(status)
            while len(statuses) > MAX_STATUSES:
                statuses.pop(next(iter(statuses)))

    signal.signal(signal.SIGCHLD, reap)
    try:
        sock.send(b"ready")
    except OSError:
        return  # the service stopped while this process was importing
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 2)
        except OSError:
            return
        if not message:
            return  # the service closed the socket
        if message == b"fork" and len(fds) == 2:
            pid = os.fork()
            if pid == 0:  # the worker: never returns into this loop
                code = 0
                try:
                    sock.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    child.serve_one(
                        Connection(fds[0], readable=False),
                        Connection(fds[1], writable=False),
                        threads,
                    )
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            for fd in fds:
                os.close(fd)
            sock.send(f"pid {pid}".encode())
        elif message.startswith(b"status "):
            for fd in fds:
                os.close(fd)
            try:
                pid = int(message.split()[1])
            except (IndexError, ValueError):
                pid = 0
            deadline = time.monotonic() + STATUS_WAIT_S
            while pid not in statuses and time.monotonic() < deadline:
                time.sleep(0.02)  # SIGCHLD reaps it meanwhile
            ended = statuses.pop(pid) if pid in statuses else None
            sock.send(f"status {'?' if ended is None else ended}".encode())
        else:
            for fd in fds:
                os.close(fd)
