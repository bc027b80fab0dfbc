"""Fuzzy set coverage: the unit trap is warned about on real data, a well-formed strategy is
not, and ``ktrdr strategy validate --data-dir`` prints the table and the warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr.cli.main import main
from ktrdr.config import parse_strategy

# sma sets written for KTRDR's close / SMA (~1.0); `units` is filled in per test.
SMA_STRATEGY = """
name: sma_units
training_data:
  symbols: {mode: single, symbol: EURUSD}
  timeframes: {mode: single, timeframe: 1h}
indicators:
  - {name: rsi, period: 14}
  - {name: sma, feature_id: sma_20, period: 20UNITS}
fuzzy_sets:
  rsi:
    oversold: [0, 0, 35]
    neutral: [25, 50, 75]
    overbought: [65, 100, 100]
  sma_20:
    below: {type: triangular, parameters: [0.97, 0.99, 1.0]}
    near: [0.995, 1.0, 1.005]
    above: {type: triangular, parameters: [1.0, 1.01, 1.03]}
"""


def _coverage(text: str, data_dir: Path):
    from ktrdr.data import load_market_data
    from ktrdr.features import compute_indicators
    from ktrdr.fuzzy.coverage import fuzzy_coverage

    cfg = parse_strategy(text)
    td = cfg.training_data
    data = load_market_data(data_dir, td.symbols.resolved(), td.timeframes.resolved())
    return fuzzy_coverage(cfg, compute_indicators(cfg, data))


def test_ratio_sets_fed_a_percent_series_are_warned_about(sample_data_dir: Path) -> None:
    from ktrdr.fuzzy.coverage import RARE_SET_SHARE

    report = _coverage(SMA_STRATEGY.replace("UNITS", ", units: percent"), sample_data_dir)
    text = "\n".join(report.warnings)
    assert "fuzzy set sma_20.below is active on" in text
    assert "fuzzy set sma_20.above is active on" in text
    assert "units: percent" in text and "close / MA around 1.0" in text
    assert "the fuzzy sets of sma_20 leave" in text  # most bars fall between the sets
    assert not [w for w in report.warnings if "rsi" in w]
    below = next(r for r in report.rows if r["indicator"] == "sma_20" and r["set"] == "below")
    assert below["active_share"] < RARE_SET_SHARE and below["bars"] > 4000


def test_well_formed_strategy_has_no_warning(sample_data_dir: Path) -> None:
    from ktrdr.fuzzy.coverage import MIN_INDICATOR_COVERAGE, RARE_SET_SHARE

    report = _coverage(SMA_STRATEGY.replace("UNITS", ""), sample_data_dir)
    assert report.warnings == []
    shares = {(r["indicator"], r["set"]): r["active_share"] for r in report.rows}
    assert shares[("sma_20", "(any)")] > MIN_INDICATOR_COVERAGE
    assert all(share >= RARE_SET_SHARE for share in shares.values())


@pytest.mark.parametrize(("hits", "warned"), [(1, True), (3, False)])
def test_rare_set_threshold(hits: int, warned: bool) -> None:
    import pandas as pd

    from ktrdr.fuzzy.coverage import fuzzy_coverage

    cfg = parse_strategy(SMA_STRATEGY.replace("UNITS", ""))
    values = np.full(100, 0.5)
    values[:hits] = 1.0  # inside "near" (membership 1): active on hits % of the bars
    series = pd.Series(values)
    rsi = pd.Series(np.linspace(0, 100, 100))
    report = fuzzy_coverage(cfg, {"EURUSD": {"1h": {"rsi": rsi, "sma_20": series}}})
    rare = [w for w in report.warnings if "sma_20.near" in w]
    assert bool(rare) is warned
    # 0.5 is in no set: the indicator covers only the hits -> always an uncovered warning
    assert any("the fuzzy sets of sma_20 leave" in w for w in report.warnings)


def test_membership_at_threshold_is_not_active() -> None:
    import pandas as pd

    from ktrdr.fuzzy.coverage import ACTIVE_MEMBERSHIP, fuzzy_coverage

    cfg = parse_strategy(SMA_STRATEGY.replace("UNITS", ""))
    # near = [0.995, 1.0, 1.005]: membership exactly ACTIVE_MEMBERSHIP at this value
    edge = 0.995 + 0.005 * ACTIVE_MEMBERSHIP
    series = pd.Series([edge] * 10 + [1.0] * 10)
    rsi = pd.Series(np.linspace(0, 100, 20))
    report = fuzzy_coverage(cfg, {"EURUSD": {"1h": {"rsi": rsi, "sma_20": series}}})
    near = next(r for r in report.rows if r["set"] == "near")
    assert near["active_share"] == pytest.approx(0.5)


def test_validate_data_dir_prints_table_and_warnings(
    tmp_path: Path, sample_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMA_STRATEGY.replace("UNITS", ", units: percent"))
    assert main(["strategy", "validate", str(path), "--data-dir", str(sample_data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid\n")
    assert "fuzzy set coverage (share of bars where membership > 0.05" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert rows["rsi.neutral"][0].endswith("%") and rows["sma_20.(any)"][0].endswith("%")
    assert "indicator.set" in out and "EURUSD" in out
    assert "warning: fuzzy set sma_20.below is active on" in out

    path.write_text(SMA_STRATEGY.replace("UNITS", ""))
    assert main(["strategy", "validate", str(path), "--data-dir", str(sample_data_dir)]) == 0
    out = capsys.readouterr().out
    assert "warning:" not in out
    assert "coverage: every fuzzy set is active on enough bars" in out


def test_validate_without_data_has_no_table_and_bad_data_dir_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMA_STRATEGY.replace("UNITS", ""))
    assert main(["strategy", "validate", str(path)]) == 0
    assert "fuzzy set coverage" not in capsys.readouterr().out
    assert main(["strategy", "validate", str(path), "--data-dir", str(tmp_path / "none")]) == 1
    assert "cannot check it on the data" in capsys.readouterr().err
