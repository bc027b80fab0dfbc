"""A strategy in KTRDR's own form (v2: KTRDR keys training does not use, fuzzy-less
indicators, list-form fuzzy sets), for the config tests of both tiers."""

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
