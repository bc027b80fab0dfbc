"""Aliases and tags ending in a newline are refused with a precise INVALID_ARGUMENT (the other
hostile values, against a real backend: ``tests/integration/backend/test_hostile_inputs.py``)."""

from __future__ import annotations

import grpc
import pytest

from ktrdr.backend.errors import RequestError
from ktrdr.backend.models.registry import check_alias, check_tags


def test_aliases_and_tags_ending_in_a_newline_are_refused() -> None:
    for bad in ("best\n", "best\r\n"):
        with pytest.raises(RequestError) as refused:
            check_alias(bad)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(RequestError):
            check_tags([bad])
    assert check_alias("best") == "best"
