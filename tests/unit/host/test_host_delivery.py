"""ResultSender's backoff: jittered and capped (delivery against a real in-process Backend:
``tests/integration/host/test_host_delivery.py``)."""

from __future__ import annotations

from pathlib import Path

from ktrdr_host.delivery import ResultSender
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool


def test_backoff_has_jitter_and_a_cap(host_settings: HostSettings, tmp_path: Path) -> None:
    settings = host_settings.model_copy(
        update={"delivery_initial_backoff_s": 1.0, "delivery_max_backoff_s": 8.0}
    )
    sender = ResultSender(Spool(tmp_path / "spool"), settings)
    waits = [sender.retry_delay_s(10) for _ in range(200)]
    assert all(4.0 <= w <= 8.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 50  # spread, not one value
    assert sender.retry_delay_s(1, hint_s=30.0) == 30.0
