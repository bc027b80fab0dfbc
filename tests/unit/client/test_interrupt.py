"""``CtrlC``: SIGINT becomes a flag and callbacks, even where SIGINT was inherited ignored."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ktrdr.client.interrupt import CtrlC


def _sigint_and_wait(event: threading.Event) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    assert event.wait(10), "the Ctrl-C callback did not run"


def test_first_ctrl_c_runs_callbacks_second_raises() -> None:
    ran = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        ctrl_c.on_interrupt(ran.set)
        _sigint_and_wait(ran)
        assert ctrl_c.interrupted
        late = threading.Event()
        ctrl_c.on_interrupt(late.set)  # registered after the Ctrl-C: runs at once
        assert late.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(10)  # the handler raises while this waits
    assert signal.getsignal(signal.SIGINT) is before


def test_works_where_sigint_was_ignored_and_restores_it() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ran = threading.Event()
        with CtrlC() as ctrl_c:
            remove = ctrl_c.on_interrupt(ran.set)
            removed = threading.Event()
            ctrl_c.on_interrupt(removed.set)()  # removed at once: never runs
            _sigint_and_wait(ran)
            remove()
        assert ctrl_c.interrupted and not removed.is_set()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_no_ctrl_c_no_callback() -> None:
    ran = threading.Event()
    with CtrlC() as ctrl_c:
        ctrl_c.on_interrupt(ran.set)
    assert not ctrl_c.interrupted and not ran.is_set()
