"""Reading untrusted strategy YAML safely: bounded size, no aliases, bounded nesting.

A strategy arrives from any user of a service, so reading it must cost little whatever it
holds:

* the text is measured before anything parses it (``max_bytes``, UTF-8 bytes);
* anchors and aliases (``&a``/``*a``) are refused while composing, so a "billion laughs"
  document never becomes a structure that a message, a ``repr`` or a validator expands;
* nesting deeper than ``MAX_YAML_DEPTH`` is refused (no ``RecursionError``);
* explicit tags other than the plain YAML types (``!!python/...``, ``!!binary``, ``!!set``...)
  are refused;
* a value that cannot be built (a 5,000-digit integer, the date 2024-13-45) is a YAML error
  with its line, never a bare ``ValueError``.

Every refusal is a ``StrategyConfigError`` (``StrategyTooLargeError`` for the size) whose
message names the field path and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent, ScalarEvent
from yaml.nodes import Node, ScalarNode

from ktrdr.config.problems import format_path
from ktrdr.echo import short_text
from ktrdr.errors import StrategyConfigError

DEFAULT_MAX_STRATEGY_BYTES = 256 * 1024  # a large real strategy is under 20 KiB
MAX_YAML_DEPTH = 32  # a strategy nests 5 levels (model.training.early_stopping.patience)
MAX_PROBLEMS = 20  # problems listed in one error; the rest are counted
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
}


class StrategyTooLargeError(StrategyConfigError):
    """The strategy text is over the byte limit (services answer RESOURCE_EXHAUSTED)."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (lone surrogates count as 3 bytes, as they would travel)."""
    return len(text.encode("utf-8", "surrogatepass"))


def check_strategy_size(
    text: str, *, source: str = "<string>", max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES
) -> None:
    """``StrategyTooLargeError`` when ``text`` is over ``max_bytes`` (checked before parsing)."""
    if len(text) <= max_bytes // 4:  # a character is at most 4 bytes: no need to encode
        return
    size = utf8_size(text)
    if size > max_bytes:
        raise StrategyTooLargeError(
            f"{source}: the strategy text is too large: at most {max_bytes} bytes, got {size}"
        )


def check_file_size(path: Path, max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES) -> None:
    """``StrategyTooLargeError`` when the file at ``path`` is over ``max_bytes`` (not read)."""
    size = path.stat().st_size  # FileNotFoundError/OSError: the caller reports them
    if size > max_bytes:
        raise StrategyTooLargeError(
            f"{path}: the strategy file is too large: at most {max_bytes} bytes, got {size}"
        )


def cap_problems(problems: list[str], limit: int = MAX_PROBLEMS) -> list[str]:
    """The first ``limit`` problems, then one line counting the rest (bounded messages)."""
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit} more problem(s)"]


class SafeYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors/aliases, odd tags or deep nesting (see module)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        step = _step(parent, index)
        self._path.append(step)
        try:
            self._check_event(event)
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def _check_event(self, event: NodeEvent) -> None:
        if isinstance(event, AliasEvent):
            self._refuse(f"YAML aliases are not allowed (*{event.anchor})", event)
        if event.anchor is not None:
            self._refuse(f"YAML anchors are not allowed (&{event.anchor})", event)
        tag = getattr(event, "tag", None)
        explicit = isinstance(event, ScalarEvent | CollectionStartEvent) and tag not in (None, "!")
        if explicit and tag not in _PLAIN_TAGS:
            self._refuse(f"YAML tag {short_text(str(tag), 60)} is not allowed", event)
        if len(self._path) > MAX_YAML_DEPTH + 1:  # +1: the document's root node
            self._refuse(f"nested more than {MAX_YAML_DEPTH} levels deep", event)

    def _refuse(self, problem: str, event: NodeEvent) -> None:
        raise _Refused(self._where(), problem, event.start_mark)

    def _where(self) -> str:
        parts = [p for p in self._path[1:] if p != ""]
        if len(parts) > 8:
            parts = [*parts[:6], "...", *parts[-1:]]
        return short_text(format_path(parts), 120)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {short_text(str(exc), 120)}", node.start_mark
            ) from None


class _Refused(yaml.MarkedYAMLError):
    def __init__(self, path: str, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path


def _step(parent: Node | None, index: Any) -> str | int:
    if isinstance(index, ScalarNode):  # a mapping value: the key names it
        return short_text(str(index.value), 60)
    if isinstance(index, int):  # a sequence item
        return index
    return ""  # the root, or a mapping key


def load_strategy_yaml(
    text: str,
    *,
    source: str = "<string>",
    max_bytes: int = DEFAULT_MAX_STRATEGY_BYTES,
    loader: type[SafeYamlLoader] = SafeYamlLoader,
) -> Any:
    """The one YAML document of ``text`` (``None`` when empty), read as the module says."""
    check_strategy_size(text, source=source, max_bytes=max_bytes)
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader
    except _Refused as exc:
        mark = exc.problem_mark
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise StrategyConfigError(f"{exc.path or source}: {exc.problem}{line}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = short_text(str(exc.problem or exc.context), 200)
        if "another document" in problem:
            problem = "a strategy is one YAML document, found a second one"
        raise StrategyConfigError(f"{source}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise StrategyConfigError(f"{source}: YAML error: {short_text(str(exc), 200)}") from None
    except RecursionError:  # a backstop: the depth check refuses deep nesting first
        raise StrategyConfigError(f"{source}: nested too deeply") from None


__all__ = [
    "DEFAULT_MAX_STRATEGY_BYTES",
    "MAX_PROBLEMS",
    "MAX_YAML_DEPTH",
    "SafeYamlLoader",
    "StrategyTooLargeError",
    "cap_problems",
    "check_file_size",
    "check_strategy_size",
    "load_strategy_yaml",
    "utf8_size",
]
