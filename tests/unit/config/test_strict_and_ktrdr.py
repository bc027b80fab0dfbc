"""Strict keys and KTRDR-form strategies (fuzzy-less indicators, `source` on stoch/adx, KTRDR
keys training does not use, list-form fuzzy sets). A KTRDR-form strategy trained in KTRDR
units: ``tests/integration/config/test_strict_and_ktrdr.py``."""

from __future__ import annotations

import pytest

from ktrdr.config import parse_strategy
from ktrdr.errors import StrategyConfigError
from tests.support.ktrdr_form import KTRDR_FORM


def test_ktrdr_form_validates_with_notices():
    cfg = parse_strategy(KTRDR_FORM)
    notices = "\n".join(cfg.notices())
    assert [ind.id for ind in cfg.active_indicators] == ["rsi_14", "adx", "sma_20"]
    assert "'macd' has no fuzzy sets; it is not computed" in notices
    assert "'stoch' has no fuzzy sets" in notices
    assert "'adx' (adx) cannot use 'source'; it is ignored" in notices
    for key in (
        "deployment",
        "decisions",
        "orchestrator",
        "risk_management",
        "backtesting",
        "training_data.history_required",
        "model.symbol_embedding_dim",
        "model.architecture.output_activation",
        "training.method",
    ):
        assert f"{key}: KTRDR key, not used by training" in notices
    assert cfg.fuzzy_sets["rsi_14"]["neutral"].type == "triangular"


@pytest.mark.parametrize(
    ("path", "yaml_key", "expected"),
    [
        (
            "model.training",
            "batch_sze: 64",
            "model.training.batch_sze: unknown key; did you mean `batch_size`?",
        ),
        ("", "sead: 3", "sead: unknown key; did you mean `seed`?"),
        (
            "training.labels",
            "zigzag_treshold: 0.02",
            "training.labels.zigzag_treshold: unknown key; did you mean `zigzag_threshold`?",
        ),
    ],
)
def test_misspelled_keys_are_errors_with_the_nearest_key(path, yaml_key, expected):
    text = KTRDR_FORM
    if path == "":
        text += yaml_key + "\n"
    elif path == "model.training":
        text = text.replace("    batch_size: 32\n", f"    batch_size: 32\n    {yaml_key}\n")
    else:
        text = text.replace("label_lookahead: 0}", f"label_lookahead: 0, {yaml_key}}}")
    with pytest.raises(StrategyConfigError) as err:
        parse_strategy(text)
    assert expected in err.value.errors


def test_ktrdr_model_input_size_is_a_notice_not_an_error(tmp_path, capsys):
    """KTRDR's ``universal_zero_shot_model.yaml`` states ``model.input_size``; here the input
    size follows the features, so the key is shown as unused, like the other KTRDR keys."""
    from ktrdr.config.cli import validate_command

    text = KTRDR_FORM.replace(
        "  symbol_embedding_dim: 8\n", "  symbol_embedding_dim: 8\n  input_size: 36\n"
    )
    assert "input_size: 36" in text
    notice = (
        "model.input_size: KTRDR key, not used by training; the input size is computed from "
        "the features here"
    )
    assert notice in parse_strategy(text).notices()
    path = tmp_path / "universal_zero_shot_model.yaml"
    path.write_text(text)
    assert validate_command(path) == 0
    assert f"notice: {notice}" in capsys.readouterr().out.splitlines()
    # still strict beside it: a misspelling of the KTRDR key is an error, not a notice
    with pytest.raises(StrategyConfigError) as err:
        parse_strategy(text.replace("input_size: 36", "input_sise: 36"))
    assert "model.input_sise: unknown key; did you mean `input_size`?" in err.value.errors
