"""The walk-forward folds as people and notebooks see them: the train summary / models show
table, the flat ``wf_*`` numbers, the client's frames and the stitched equity plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.cli.summary import run_summary
from ktrdr.client.results import folds_frame, oos_equity_frame
from ktrdr.training.fold_metrics import walk_forward_summary
from tests.support.model_metadata import sample_walk_forward


@pytest.fixture
def wf_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    metadata["metrics"]["walk_forward"] = sample_walk_forward()
    return metadata


def test_summary_prints_the_fold_table_and_the_spread(wf_metadata: dict[str, Any]) -> None:
    text = run_summary("fake_rsi", device="cpu", where="here", duration_s=1, metadata=wf_metadata)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "walk-forward: 3 folds" in line)
    table = lines[start + 1 : start + 5]
    assert table[0].split()[:4] == ["fold", "train", "from", "test"]
    assert table[1].split()[:5] == ["1", "2024-01-01", "2024-03-01", "2024-03-28", "50"]
    assert "+2.00%" in table[1] and "beats" in table[1]
    assert "-1.00%" in table[2] and "no edge (buy_and_hold)" in table[2]
    assert "return +1.33% +- 2.08%" in text
    assert "folds beating every baseline: 2/3" in text
    assert "walk-forward" not in run_summary(
        "fake_rsi", device="cpu", where="here", duration_s=1, metadata={"metrics": {}}
    )


def test_flat_numbers_for_sweeps_and_listings(wf_metadata: dict[str, Any]) -> None:
    flat = walk_forward_summary(wf_metadata["metrics"])
    assert flat["wf_folds"] == 3
    assert flat["wf_mean_return"] == pytest.approx(0.04 / 3)
    assert flat["wf_std_return"] == pytest.approx(0.0208166, rel=1e-5)
    assert [flat[f"wf_fold_return_{k}"] for k in (1, 2, 3)] == [0.02, -0.01, 0.03]
    stitched = wf_metadata["metrics"]["walk_forward"]["stitched"]["overall"]["strategy"]
    assert flat["wf_oos_return"] == stitched["return"]
    assert not any(key.startswith("test_") for key in flat)  # never the test period's
    assert walk_forward_summary({}) == {}


def test_client_frames(wf_metadata: dict[str, Any]) -> None:
    table = folds_frame(wf_metadata)
    assert table is not None
    assert list(table.index) == [1, 2, 3]
    assert table.loc[2, "return"] == -0.01 and table.loc[2, "train_bars"] == 220
    assert table.attrs["aggregate"]["accuracy"]["mean"] == pytest.approx(0.52)
    curve = oos_equity_frame(wf_metadata)
    assert curve is not None and list(curve.columns) == ["strategy", "buy_and_hold"]
    assert curve["strategy"].iloc[-1] == pytest.approx(
        1 + wf_metadata["metrics"]["walk_forward"]["stitched"]["overall"]["strategy"]["return"]
    )
    assert folds_frame({"metrics": {}}) is None and oos_equity_frame({"metrics": {}}) is None


def test_the_figure_adds_the_stitched_equity(tmp_path: Path, wf_metadata: dict[str, Any]) -> None:
    from ktrdr.plots import save_training_plot, training_figure

    figure = training_figure(wf_metadata)
    assert len(figure.axes) == 5
    assert figure.axes[4].get_title().startswith("Walk-forward out-of-sample equity (3 folds)")
    assert save_training_plot(wf_metadata, tmp_path / "wf.png").stat().st_size > 0
