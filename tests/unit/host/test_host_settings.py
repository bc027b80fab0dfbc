"""HostSettings: defaults, the KTRDR_HOST_ environment, validation and the backoff schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ktrdr_host.settings import HostSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = HostSettings(_env_file=None)
    assert settings.address == "127.0.0.1:50051"
    assert settings.data_dir == Path("data/samples")
    assert settings.max_sessions == 1
    assert settings.chunk_size == 1 << 20
    assert settings.device == "auto"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_HOST_ADDRESS", "0.0.0.0:6000")
    monkeypatch.setenv("KTRDR_HOST_MAX_SESSIONS", "3")
    monkeypatch.setenv("KTRDR_HOST_DEVICE", " CPU ")
    monkeypatch.setenv("KTRDR_HOST_DELIVERY_MAX_BACKOFF_S", "16")
    settings = HostSettings(_env_file=None)
    assert (settings.address, settings.max_sessions, settings.device) == ("0.0.0.0:6000", 3, "cpu")
    assert settings.delivery_max_backoff_s == 16


def test_backoff_is_1_2_4_then_capped_at_8() -> None:
    settings = HostSettings(_env_file=None)
    assert [settings.backoff_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 8, 8, 8]


@pytest.mark.parametrize(
    "field",
    [
        {"max_sessions": 0},
        {"heartbeat_interval_s": 6},
        {"chunk_size": 8 << 20, "max_message_bytes": 8 << 20},
        {"delivery_initial_backoff_s": 10, "delivery_max_backoff_s": 8},
    ],
)
def test_invalid_values_are_refused(field: dict) -> None:
    with pytest.raises(ValidationError):
        HostSettings(_env_file=None, **field)
