"""Training plots from model metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktrdr.plots import save_training_plot, training_figure


def test_png_written(tmp_path: Path, metadata: dict[str, Any]) -> None:
    out = save_training_plot(metadata, tmp_path / "sub" / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = training_figure(metadata)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:2] == ["Loss", "Accuracy"] and titles[2].startswith("Test confusion matrix")
    assert len(figure.axes[0].lines) == 2  # train and validation


def test_missing_parts_still_draw(tmp_path: Path) -> None:
    out = save_training_plot({"strategy_name": "empty"}, tmp_path / "e.png")
    assert out.stat().st_size > 0
