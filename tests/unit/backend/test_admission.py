"""The admission setting: a pending-queue bound below one is refused (the bound against a
real backend: ``tests/integration/backend/test_admission.py``)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_pending_must_be_positive(value: str, monkeypatch) -> None:
    from pydantic import ValidationError

    from ktrdr.backend.settings import BackendSettings

    monkeypatch.setenv("KTRDR_BACKEND_MAX_PENDING", value)
    with pytest.raises(ValidationError):
        BackendSettings()
