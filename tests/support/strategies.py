"""The tests' and benchmarks' example strategy (``tiny_strategy_yaml`` fixture)."""

# A small, fast strategy on the bundled EURUSD 1h data: a few seconds of training.
TINY_STRATEGY_YAML = """\
name: tiny_rsi
description: small strategy used by the tests
version: "1.0"
training_data:
  symbols: {mode: single, symbol: EURUSD}
  timeframes: {mode: single, timeframe: 1h}
indicators:
  - name: rsi
    period: 14
  - name: macd
    fast_period: 12
    slow_period: 26
    signal_period: 9
fuzzy_sets:
  rsi:
    oversold: {type: triangular, parameters: [0, 0, 35]}
    neutral: {type: triangular, parameters: [25, 50, 75]}
    overbought: {type: triangular, parameters: [65, 100, 100]}
  macd:
    negative: {type: triangular, parameters: [-0.5, -0.5, 0]}
    positive: {type: triangular, parameters: [0, 0.5, 0.5]}
model:
  type: mlp
  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}
  features: {lookback_periods: 1, include_price_context: false, scale_features: true}
  training:
    learning_rate: 0.005
    batch_size: 64
    epochs: 4
    optimizer: adam
    early_stopping: {patience: 10, min_delta: 0.0}
training:
  labels: {source: zigzag, zigzag_threshold: 0.004, label_lookahead: 20}
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
seed: 7
"""
