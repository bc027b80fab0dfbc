"""A one-screen, human-readable summary of a strategy (``ktrdr strategy validate``)."""

from __future__ import annotations

from ktrdr.config.strategy import StrategyConfig


def strategy_summary(cfg: StrategyConfig) -> str:
    """What the strategy trains on, with which inputs, model and training settings."""
    data = cfg.training_data
    timeframes = data.timeframes.resolved()
    arch = cfg.model.architecture
    feats = cfg.model.features
    train = cfg.model.training
    labels = cfg.training.labels
    split = cfg.training.data_split
    stopping = (
        f"early stopping patience {train.early_stopping.patience}"
        if train.early_stopping.enabled
        else "no early stopping"
    )
    lines = [
        f"Strategy:   {cfg.name} (version {cfg.version})",
        *([f"            {cfg.description.strip().splitlines()[0]}"] if cfg.description else []),
        f"Symbols:    {', '.join(data.symbols.resolved())}",
        f"Timeframes: {timeframes[0]} (base)" + "".join(f", {tf}" for tf in timeframes[1:]),
        f"Dates:      {data.start_date or 'first bar'} .. {data.end_date or 'last bar'}",
        f"Indicators: {len(cfg.indicators)}",
    ]
    for ind in cfg.indicators:
        params = ", ".join(f"{key}={value}" for key, value in ind.params.items())
        sets = ", ".join(cfg.fuzzy_sets.get(ind.id, {})) or "none (not computed)"
        lines.append(f"  {ind.id:<14} {ind.name}({params}) -> fuzzy sets: {sets}")
    lines += [
        f"Model:      {cfg.model.type} hidden {arch.hidden_layers} {arch.activation}, "
        f"dropout {arch.dropout:g}",
        f"Features:   lookback {feats.lookback_periods}, price context "
        f"{'on' if feats.include_price_context else 'off'}, scaling "
        f"{'on' if feats.scale_features else 'off'}",
        f"Training:   {train.optimizer} lr {train.learning_rate:g}, batch {train.batch_size}, "
        f"{train.epochs} epochs, {stopping}",
        f"Labels:     {labels.source} threshold {labels.zigzag_threshold:g}, "
        f"lookahead {labels.label_lookahead}",
        f"Split:      train {split.train:g} / validation {split.validation:g} / "
        f"test {split.test:g}",
        f"Walk-forward: {walk_forward_line(cfg)}",
        f"Seed:       {seed_line(cfg)}",
    ]
    return "\n".join(lines)


def walk_forward_line(cfg: StrategyConfig) -> str:
    """The walk-forward folds the strategy asks for, or that it has none."""
    wf = cfg.evaluation.walk_forward
    if wf is None:
        return "none (one split; evaluation.walk_forward.folds adds folds)"
    sizes = [
        f"train_bars {wf.train_bars}" if wf.train_bars is not None else "",
        f"test_bars {wf.test_bars}" if wf.test_bars is not None else "",
        f"embargo {wf.embargo_bars} bars" if wf.embargo_bars else "",
    ]
    extra = ", ".join(s for s in sizes if s)
    return (
        f"{wf.folds} folds, {wf.window} window{', ' + extra if extra else ''}, before the "
        "test period (one model each, evaluation only)"
    )


def seed_line(cfg: StrategyConfig) -> str:
    """The seed training will use, and where it comes from."""
    seed, source = cfg.training_seed
    if source == "strategy":
        return f"{seed} (from the strategy's seed; runs are reproducible)"
    return f"{seed} (the default: the strategy sets no seed; runs are reproducible)"


__all__ = ["seed_line", "strategy_summary", "walk_forward_line"]
