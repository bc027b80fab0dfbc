"""Training plots from model metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktrdr.client.results import trading_frame


def test_png_written(tmp_path: Path, metadata: dict[str, Any]) -> None:
    from ktrdr.plots import save_training_plot, training_figure

    out = save_training_plot(metadata, tmp_path / "sub" / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = training_figure(metadata)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:2] == ["Loss", "Accuracy"] and titles[2].startswith("Test confusion matrix")
    assert len(figure.axes[0].lines) == 2  # train and validation
    equity = figure.axes[3]
    assert equity.get_title().startswith("Test period equity")
    labels = [line.get_label() for line in equity.lines]
    assert labels[0].startswith("strategy (") and labels[1].startswith("buy and hold (")
    curve = metadata["metrics"]["trading"]["equity_curve"]
    assert list(equity.lines[0].get_ydata()) == curve["strategy"]


def test_trading_frame_has_strategy_and_baselines(metadata: dict[str, Any]) -> None:
    table = trading_frame(metadata)
    assert list(table.index) == ["strategy", "buy_and_hold", "majority", "flat"]
    assert list(table.columns) == ["return", "sharpe", "max_drawdown", "trades", "hit_rate"]
    overall = metadata["metrics"]["trading"]["overall"]
    assert table.loc["buy_and_hold", "return"] == overall["buy_and_hold"]["return"]
    assert table.loc["flat", "trades"] == 0
    assert table.attrs["verdict"] == metadata["metrics"]["trading"]["verdict"]["text"]
    assert trading_frame({}).empty


def test_missing_parts_still_draw(tmp_path: Path) -> None:
    from ktrdr.plots import save_training_plot, training_figure

    out = save_training_plot({"strategy_name": "empty"}, tmp_path / "e.png")
    assert out.stat().st_size > 0
    figure = training_figure({"strategy_name": "empty"})
    assert [t.get_text() for t in figure.axes[3].texts] == ["no trading metrics"]
