"""ModeSelector without hosts: local GPU requirements and the default (against real hosts:
``tests/integration/backend/test_mode_selector.py``)."""

from __future__ import annotations

import pytest

from ktrdr.backend.execution.mode_selector import ModeSelector, ModeUnavailable
from ktrdr.training.v1 import backend_pb2 as pb

LOCAL, HOST, AUTO = pb.EXECUTION_MODE_LOCAL, pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_AUTO


async def test_local_with_require_gpu_needs_a_local_gpu(monkeypatch):
    monkeypatch.setattr("ktrdr.backend.execution.mode_selector._local_gpu", lambda: False)
    with pytest.raises(ModeUnavailable, match="no GPU"):
        await ModeSelector([], timeout_s=1.0).select(LOCAL, True)


async def test_auto_without_hosts_is_local():
    chosen = await ModeSelector([], timeout_s=1.0).select(AUTO, False, default=True)
    assert chosen.mode == LOCAL and "default" in chosen.reason
