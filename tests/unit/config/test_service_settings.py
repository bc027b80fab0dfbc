"""The work bounds and worker settings both services share, each under its own prefix."""

from __future__ import annotations

import pytest

from ktrdr.backend.settings import BackendSettings
from ktrdr_host.settings import HostSettings


def test_each_service_reads_the_shared_settings_under_its_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_HOST_MAX_EPOCHS", "7")
    monkeypatch.setenv("KTRDR_HOST_WORKER_SPARES", "0")
    monkeypatch.setenv("KTRDR_BACKEND_WORKER_THREADS", "3")
    monkeypatch.setenv("KTRDR_BACKEND_MAX_STRATEGY_BYTES", "1000")
    host, backend = HostSettings(), BackendSettings()
    assert (host.work_limits.max_epochs, host.worker_spares, host.worker_threads) == (7, 0, 0)
    assert backend.work_limits.max_epochs == 10000
    assert (backend.worker_threads, backend.max_strategy_bytes) == (3, 1000)


def test_a_negative_worker_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_BACKEND_WORKER_THREADS", "-1")
    with pytest.raises(ValueError, match="worker_threads"):
        BackendSettings()


@pytest.mark.parametrize(
    ("value", "trains", "at_start"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("AT_START", False, True),
        ("first-run", True, False),
    ],
)
def test_worker_preload_decides_when_the_forkserver_imports(
    monkeypatch: pytest.MonkeyPatch, value: str, trains: bool, at_start: bool
) -> None:
    monkeypatch.setenv("KTRDR_HOST_WORKER_PRELOAD", value)
    assert HostSettings().preload_at_start(trains_by_default=trains) is at_start


def test_an_unknown_worker_preload_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_BACKEND_WORKER_PRELOAD", "yes")
    with pytest.raises(ValueError, match="'auto', 'at-start' or 'first-run'"):
        BackendSettings()
