"""``PATH=SPEC`` search-space strings and objectives, as ``ktrdr sweep create`` reads them."""

from __future__ import annotations

import pytest

from ktrdr.client import KtrdrClientError
from ktrdr.client.sweeps import parse_objective, parse_param, parse_param_assignment


def test_specs_become_search_space_dimensions() -> None:
    p = parse_param_assignment("model.training.learning_rate=float:1e-4:1e-1:log")
    assert p.path == "model.training.learning_rate"
    assert (p.float_range.low, p.float_range.high, p.float_range.log) == (1e-4, 1e-1, True)
    p = parse_param_assignment("model.architecture.hidden_layers[0]=int:8:64:8")
    assert (p.int_range.low, p.int_range.high, p.int_range.step, p.int_range.log) == (
        8,
        64,
        8,
        False,
    )
    p = parse_param_assignment("model.architecture.activation=choice:relu, tanh")
    assert list(p.choices.values) == ["relu", "tanh"]
    p = parse_param_assignment("model.architecture.hidden_layers=choice:[[64, 32], [16]]")
    assert list(p.choices.values) == ["[64, 32]", "[16]"]
    p = parse_param("model.training.batch_size", [32, 64])
    assert list(p.choices.values) == ["32", "64"]


@pytest.mark.parametrize(
    "text", ["lr", "x=float:1", "x=int:a:3", "x=gauss:0:1", "x=choice:[1,", "=int:1:2"]
)
def test_malformed_specs_say_what_is_expected(text: str) -> None:
    with pytest.raises(KtrdrClientError):
        parse_param_assignment(text)


def test_objectives_take_an_optional_direction() -> None:
    assert parse_objective("val_loss") == ("val_loss", 0)
    assert parse_objective("test_accuracy:max") == ("test_accuracy", 2)
    assert parse_objective("val_loss:min") == ("val_loss", 1)
    with pytest.raises(KtrdrClientError):
        parse_objective("val_loss:up")
