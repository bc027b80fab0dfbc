"""Strict keys, KTRDR-form strategies (fuzzy-less indicators, `source` on stoch/adx, KTRDR
keys training does not use, list-form fuzzy sets) and KTRDR units for moving averages."""

from __future__ import annotations

import pytest

from ktrdr.config import parse_strategy
from ktrdr.errors import StrategyConfigError

KTRDR_FORM = """
name: trend_momentum
description: KTRDR v2 form
version: '2.0'
hypothesis: trend plus momentum
scope: symbol_specific
training_data:
  symbols: {mode: single, symbol: EURUSD}
  timeframes: {mode: single, timeframe: 1h}
  history_required: 200
  start_date: 2017-04-19
  end_date: 2018-02-07
deployment:
  target_symbols: {mode: training_only}
  target_timeframes: {mode: single, timeframe: 1h}
indicators:
  - {name: rsi, feature_id: rsi_14, period: 14, source: close}
  - {name: macd, fast_period: 12, slow_period: 26, signal_period: 9, source: close}
  - {name: stoch, k_period: 14, d_period: 3, source: close}
  - {name: adx, period: 14, source: close}
  - {name: sma, feature_id: sma_20, period: 20}
fuzzy_sets:
  rsi_14:
    oversold: {type: triangular, parameters: [0, 20, 35]}
    neutral: [30, 50, 70]
    overbought: {type: trapezoidal, parameters: [65, 80, 100, 100]}
  adx:
    weak: {type: triangular, parameters: [0, 15, 30]}
    strong: {type: gaussian, parameters: [50, 15]}
  sma_20:
    below: {type: triangular, parameters: [0.97, 0.99, 1.0]}
    near: [0.995, 1.0, 1.005]
    above: {type: triangular, parameters: [1.0, 1.01, 1.03]}
model:
  type: mlp
  architecture: {hidden_layers: [16, 8], activation: relu, output_activation: softmax, dropout: 0.2}
  features: {include_price_context: false, lookback_periods: 1, scale_features: true}
  training:
    learning_rate: 0.001
    batch_size: 32
    epochs: 2
    optimizer: adam
    early_stopping: {enabled: true, patience: 5, min_delta: 0.001}
  symbol_embedding_dim: 8
decisions:
  output_format: classification
  confidence_threshold: 0.6
  position_awareness: true
  filters: {min_signal_separation: 4, volume_filter: false}
training:
  method: supervised
  labels: {source: zigzag, zigzag_threshold: 0.01, label_lookahead: 0}
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
orchestrator: {max_position_size: 1}
risk_management: {position_sizing: fixed_fraction, risk_per_trade: 0.02}
backtesting: {start_date: 2018-01-01, initial_capital: 100000}
"""


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


@pytest.mark.integration  # a real training
def test_ktrdr_form_trains_in_ktrdr_units(sample_data_dir):
    from ktrdr.training.executor import TrainingExecutor

    cfg = parse_strategy(KTRDR_FORM.replace("start_date: 2017-04-19", "start_date: 2017-10-01"))
    result = TrainingExecutor(sample_data_dir, device="cpu", importance_repeats=1).run(cfg)
    names = result.bundle.metadata["feature_names"]
    assert not any(n.startswith(("macd", "stoch")) for n in names)  # fuzzy-less: not computed
    assert "sma_20_near" in names
    assert result.bundle.metadata["notices"] == cfg.notices()
    trading = result.metrics["trading"]
    assert set(trading["overall"]) >= {"strategy", "buy_and_hold", "majority", "flat"}


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
