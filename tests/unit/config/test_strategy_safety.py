"""Reading untrusted strategy YAML: size cap, no aliases, no odd tags, bounded nesting,
short messages, and never an exception other than StrategyConfigError."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from ktrdr.config import load_strategy, parse_strategy
from ktrdr.config.safe_yaml import (
    DEFAULT_MAX_STRATEGY_BYTES,
    MAX_YAML_DEPTH,
    StrategyTooLargeError,
    cap_problems,
)
from ktrdr.echo import short_repr, short_text
from ktrdr.errors import StrategyConfigError

MAX_MESSAGE = 1000  # no refusal echoes more than a few hundred characters of input


def alias_bomb(levels: int = 9) -> str:
    """Nine levels of nine-fold aliases: 387 million strings once expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refusal(text: str, **kwargs: object) -> str:
    """The message parse_strategy refuses ``text`` with (within a second of CPU)."""
    started = time.thread_time()
    with pytest.raises(StrategyConfigError) as info:
        parse_strategy(text, source="strategy_yaml", **kwargs)  # type: ignore[arg-type]
    # CPU time of this thread, not wall time: an expanded bomb costs minutes of CPU, and a
    # busy machine's other processes do not count here
    assert time.thread_time() - started < 1.0
    message = str(info.value)
    assert len(message) < MAX_MESSAGE, message[:300]
    return message


def test_alias_bomb_in_an_indicator_parameter_is_refused_at_once(tiny_strategy_yaml):
    bombed = tiny_strategy_yaml.replace("period: 14", "period: *l8") + alias_bomb()
    message = refusal(bombed)
    assert message.startswith("indicators[0].period: YAML aliases are not allowed (*l8)")
    assert "(line 9, column 13)" in message
    assert "YAML anchors are not allowed (&l0)" in refusal(alias_bomb())


def test_an_alias_names_its_field_and_line(tiny_strategy_yaml):
    text = tiny_strategy_yaml.replace("epochs: 4", "epochs: *e").replace(
        "batch_size: 64", "batch_size: 64\n    extra: 1"
    )
    message = refusal(text)
    assert message.startswith("model.training.epochs: YAML aliases are not allowed (*e)")
    assert "(line 30, column 13)" in message


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object/apply:os.system ['true']", "python/object/apply:os.system"),
        ("!!binary aGVsbG8=", "binary"),
        ("!!set {a: null}", "set"),
    ],
)
def test_tags_beyond_plain_yaml_types_are_refused(tiny_strategy_yaml, value, tag):
    message = refusal(tiny_strategy_yaml.replace("period: 14", f"period: {value}"))
    assert message.startswith(f"indicators[0].period: YAML tag tag:yaml.org,2002:{tag}")


def test_plain_explicit_tags_are_still_read(tiny_strategy_yaml):
    config = parse_strategy(tiny_strategy_yaml.replace('version: "1.0"', "version: !!str 1.0"))
    assert config.version == "1.0"


def test_text_over_the_byte_cap_is_refused_before_parsing(tiny_strategy_yaml):
    huge = tiny_strategy_yaml + "deployment: |\n" + "  not yaml: [ {\n" * 500_000  # ~7.5 MB
    started = time.thread_time()
    with pytest.raises(StrategyTooLargeError) as info:
        parse_strategy(huge, source="strategy_yaml")
    assert time.thread_time() - started < 0.5  # CPU: refused before any parsing
    assert str(info.value).startswith(
        f"strategy_yaml: the strategy text is too large: at most {DEFAULT_MAX_STRATEGY_BYTES}"
    )


def test_byte_cap_counts_utf8_bytes_and_is_a_parameter(tiny_strategy_yaml):
    text = tiny_strategy_yaml + "deployment: " + "é" * 600 + "\n"  # 2 bytes each
    limit = len(text.encode()) - 1
    assert len(text) < limit
    with pytest.raises(StrategyTooLargeError):
        parse_strategy(text, max_bytes=limit)
    assert parse_strategy(text, max_bytes=limit + 1).name == "tiny_rsi"


def test_load_strategy_checks_the_file_size_before_reading(tmp_path: Path, tiny_strategy_yaml):
    path = tmp_path / "big.yaml"
    path.write_text(tiny_strategy_yaml + "#" * 2000 + "\n")
    with pytest.raises(StrategyTooLargeError, match="at most 1000 bytes"):
        load_strategy(path, max_bytes=1000)
    assert load_strategy(path).name == "tiny_rsi"


@pytest.mark.parametrize("flow", [True, False])
def test_nesting_2000_deep_is_refused_without_recursion_error(tiny_strategy_yaml, flow):
    if flow:
        deep = "deployment: " + "[" * 2000 + "]" * 2000 + "\n"
    else:  # block style: 300 levels (2,000 indented levels would be over the byte cap)
        deep = "deployment:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 300)) + "\n"
    message = refusal(tiny_strategy_yaml + deep)
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in message
    assert message.startswith("deployment")


def test_nesting_within_the_cap_is_read(tiny_strategy_yaml):
    depth = MAX_YAML_DEPTH - 1
    config = parse_strategy(tiny_strategy_yaml + "deployment: " + "[" * depth + "]" * depth + "\n")
    assert config.name == "tiny_rsi"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("epochs: 4", "epochs: 1e400", "model.training.epochs: must be a valid integer"),
        ("epochs: 4", "epochs: 1.0e+400", "model.training.epochs: must be a finite number"),
        ("period: 14", "period: 99999999999999999999999", "rsi.period must be <= 100000"),
        ("period: 14", "period: 1" + "0" * 400, "got <integer of about 401 digits>"),
        ("period: 14", "period: 1" + "0" * 5000, "line 9, column 13: cannot read this value"),
        ("seed: 7", "seed: 2024-13-45", "line 35, column 7: cannot read this value"),
        ("name: rsi", "name: " + "x" * 100_000, "unknown indicator 'xxx"),
        ("symbol: EURUSD", "symbol: " + "Y" * 100_000, "invalid symbol 'YYY"),
    ],
)
def test_huge_or_odd_values_are_short_config_errors(tiny_strategy_yaml, old, new, expected):
    assert old in tiny_strategy_yaml
    assert expected in refusal(tiny_strategy_yaml.replace(old, new, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "a strategy must be a mapping of keys to values, got list"),
        ("just text\n", "a strategy must be a mapping of keys to values, got str"),
        ("name: a\n---\nname: b\n", "a strategy is one YAML document, found a second one"),
        ("name: a\x00\n", "YAML error"),
        ("name: te\udcffst\n", "YAML error"),
    ],
)
def test_odd_documents_are_config_errors(text, expected):
    assert expected in refusal(text)


def test_thousands_of_problems_are_capped(tiny_strategy_yaml):
    entries = "".join(f"  - name: nope{i}\n" for i in range(3000))
    text = tiny_strategy_yaml.replace("indicators:\n", "indicators:\n" + entries, 1)
    with pytest.raises(StrategyConfigError) as info:
        parse_strategy(text)
    assert len(info.value.errors) == 21
    assert info.value.errors[-1].startswith("... and ")
    assert cap_problems(["a", "b"], 1) == ["a", "... and 1 more problem(s)"]


def test_short_repr_never_expands_a_shared_structure():
    node: list[object] = ["lol"] * 9
    for _ in range(9):
        node = [node] * 9
    started = time.thread_time()
    text = short_repr(node)
    assert time.thread_time() - started < 0.1  # CPU: 387 million leaves never visited
    assert len(text) <= 200
    assert short_repr("x" * 10_000).startswith("'xxx")
    assert len(short_text("y" * 10_000, 50)) == 50


def test_yaml_safe_load_would_have_expanded_the_bomb():
    """The premise: without the alias refusal the bomb is a shared, exponential structure."""
    data = yaml.safe_load(alias_bomb(4))
    assert data["l3"][0] is data["l3"][1]
