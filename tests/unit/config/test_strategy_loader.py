"""Loading strategy YAML, overrides, the summary, `strategy validate` and the settings."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ktrdr.config import (
    LibrarySettings,
    apply_overrides,
    load_strategy,
    parse_strategy,
    strategy_from_dict,
    strategy_summary,
)
from ktrdr.config.cli import validate_command
from ktrdr.errors import StrategyConfigError


def test_load_strategy_from_file_ignores_ktrdr_extras(tmp_path, valid_yaml):
    path = tmp_path / "s.yaml"
    path.write_text(valid_yaml)
    cfg = load_strategy(path)
    assert cfg.name == "rsi_macd_test"
    assert cfg.training_data.symbols.resolved() == ["EURUSD"]


def test_unquoted_yaml_dates_and_list_forms(valid_yaml):
    text = valid_yaml.replace("start_date: '2017-05-01'", "start_date: 2017-05-01")
    text = text.replace(
        "symbols:\n    mode: single\n    symbol: eurusd",
        "symbols:\n    mode: multi_symbol\n    list: [EURUSD, GOOG]",
    )
    cfg = parse_strategy(text)
    assert cfg.training_data.start_date == date(2017, 5, 1)
    assert cfg.training_data.symbols.resolved() == ["EURUSD", "GOOG"]


def test_missing_file(tmp_path):
    with pytest.raises(StrategyConfigError, match=r"nope\.yaml: file not found"):
        load_strategy(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(StrategyConfigError) as info:
        parse_strategy("name: x\nindicators: [\n  - a: b: c\n", source="bad.yaml")
    (error,) = info.value.errors
    assert error.startswith("bad.yaml: YAML syntax error at line 3")


def test_duplicate_yaml_keys_are_rejected_with_both_lines(valid_yaml):
    text = valid_yaml + "seed: 8\n"
    with pytest.raises(StrategyConfigError, match=r"duplicate key 'seed' \(first at line \d+\)"):
        parse_strategy(text, source="dup.yaml")


def test_empty_and_non_mapping_documents():
    with pytest.raises(StrategyConfigError, match="the strategy is empty"):
        parse_strategy("# nothing\n")
    with pytest.raises(StrategyConfigError, match="must be a mapping"):
        parse_strategy("- a\n- b\n")


def test_overrides_replace_symbols_timeframes_dates_and_seed(valid_dict: dict[str, Any]):
    cfg = strategy_from_dict(valid_dict)
    out = apply_overrides(
        cfg,
        symbols="eurusd,goog",
        timeframes=["4h", "1h", "1d"],
        start_date="2017-06-01",
        end_date=date(2017, 7, 1),
        seed=3,
    )
    assert out.training_data.symbols.resolved() == ["EURUSD", "GOOG"]
    assert out.training_data.timeframes.resolved() == ["4h", "1h", "1d"]
    assert out.training_data.start_date == date(2017, 6, 1)
    assert out.training_data.end_date == date(2017, 7, 1)
    assert out.seed == 3
    assert out.indicators == cfg.indicators  # parameters survive the round trip
    assert cfg.seed == 7  # the original is untouched

    single = apply_overrides(cfg, symbols=["goog"], timeframes="1d")
    assert single.training_data.symbols.mode == "single"
    assert single.training_data.timeframes.resolved() == ["1d"]


def test_overrides_are_validated(valid_dict: dict[str, Any]):
    cfg = strategy_from_dict(valid_dict)
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(cfg, timeframes="1h,7h", end_date="2017-01-01")
    assert any(e.startswith("training_data.timeframes.list[1]: unknown") for e in info.value.errors)
    assert any(
        e.startswith("training_data.end_date: 2017-01-01 is before") for e in info.value.errors
    )


def test_summary_fits_one_screen_and_names_the_essentials(valid_dict: dict[str, Any]):
    summary = strategy_summary(strategy_from_dict(valid_dict))
    lines = summary.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 100 for line in lines)
    for expected in ("rsi_macd_test", "EURUSD", "1h (base)", "oversold, overbought", "seed"):
        assert expected.lower() in summary.lower()


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        (7, "Seed:       7 (from the strategy's seed; runs are reproducible)"),
        (None, "Seed:       42 (the default: the strategy sets no seed; runs are reproducible)"),
    ],
)
def test_validate_prints_the_seed_training_will_use(
    tmp_path, valid_dict: dict[str, Any], capsys, seed, expected
):
    import yaml

    if seed is None:
        del valid_dict["seed"]
    cfg = strategy_from_dict(valid_dict)
    assert cfg.training_seed == ((7, "strategy") if seed else (42, "default"))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(valid_dict))
    assert validate_command(path) == 0
    out = capsys.readouterr().out
    assert expected in out.splitlines()
    assert "not reproducible" not in out


def test_validate_command_valid(tmp_path, valid_yaml, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(valid_yaml)
    assert validate_command(path) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid\n")
    assert "EURUSD" in out


def test_validate_command_invalid_prints_each_error_to_stderr(tmp_path, valid_yaml, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(valid_yaml.replace("period: 14", "perod: 14").replace("epochs: 5", "epochs: 0"))
    assert validate_command(path) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert "2 problems" in err[0]
    assert "indicators[0]: unknown parameter 'perod' for rsi; allowed: period, source" in err
    assert "model.training.epochs: must be > 0, got 0" in err


def test_settings_defaults_and_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("KTRDR_DEVICE", "KTRDR_DATA_DIR", "KTRDR_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = LibrarySettings()
    assert (settings.device, str(settings.data_dir), str(settings.models_dir)) == (
        "auto",
        "data/samples",
        "models",
    )
    monkeypatch.setenv("KTRDR_DEVICE", "CPU")
    monkeypatch.setenv("KTRDR_DATA_DIR", "/tmp/bars")
    settings = LibrarySettings()
    assert settings.device == "cpu" and str(settings.data_dir) == "/tmp/bars"
    monkeypatch.setenv("KTRDR_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device"):
        LibrarySettings()
