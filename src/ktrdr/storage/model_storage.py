"""Versioned model storage: ``models/{strategy}/{SYMBOLS}_{TIMEFRAMES}_v{N}/``.

A version is written to a hidden temporary directory beside its final place and renamed into
place, so a crash never leaves a half-written version. Version numbers are per strategy and
allocated under a file lock, so concurrent saves (threads or processes) get distinct versions.
Names are checked against strict patterns so nothing can escape the models directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ktrdr.echo import short_repr
from ktrdr.errors import StorageError
from ktrdr.storage.bundle import METADATA_FILE, ModelBundle

logger = logging.getLogger(__name__)

STRATEGY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}\Z")
TIMEFRAME_RE = re.compile(r"^[0-9]{1,4}[a-z]{1,3}\Z")
ORIGIN_FILE = "origin.json"
# The highest version ever allocated in a strategy's directory: a deleted version's number
# is never given out again (aliases, caches and notes keep meaning what they meant).
HIGH_WATER_FILE = ".high-water"
VERSION_DIR_RE = re.compile(r"^(?P<combo>[A-Za-z0-9._+-]+)_v(?P<version>[0-9]+)\Z")


def check_strategy_name(name: str) -> str:
    if not STRATEGY_NAME_RE.match(name) or name in {".", ".."} or ".." in name:
        raise StorageError(
            f"strategy name {short_repr(name)} is not allowed for storage: use letters, digits, "
            "'.', '_' "
            "and '-' (at most 100, starting with a letter or digit)"
        )
    return name


def combo_name(symbols: list[str], timeframes: list[str]) -> str:
    """``EURUSD_1h`` or ``EURUSD+GOOG_1h+4h``; every part checked against a strict pattern."""
    if not symbols or not timeframes:
        raise StorageError("a stored model needs at least one symbol and one timeframe")
    for symbol in symbols:
        if not SYMBOL_RE.match(symbol):
            raise StorageError(f"symbol {symbol!r} is not allowed for storage")
    for tf in timeframes:
        if not TIMEFRAME_RE.match(tf):
            raise StorageError(f"timeframe {tf!r} is not allowed for storage")
    return f"{'+'.join(symbols)}_{'+'.join(timeframes)}"


@dataclass(frozen=True)
class StoredModel:
    """A saved version: where it is and what it is."""

    strategy: str
    version: int
    path: Path
    symbols: list[str] = field(default_factory=list)
    timeframes: list[str] = field(default_factory=list)
    created_at: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def reference(self) -> str:
        """Where it lies inside its store (``strategy/dir``): what a registry records."""
        return f"{self.strategy}/{self.path.name}"


def model_reference_parts(recorded: str) -> tuple[str, str]:
    """``(strategy, dir)`` of a recorded model path, however it was recorded: store-relative
    (``rsi_single/EURUSD_1h_v1``, what is recorded now), absolute (older backends with an
    absolute data directory), or relative to the working directory of the time (older backends
    with a relative one: ``.ktrdr/backend/models/rsi_single/EURUSD_1h_v1``). A version always
    lies at ``ROOT/strategy/dir``, so the last two parts name it wherever the store was then;
    both are checked against the storage patterns (nothing can point outside the store)."""
    parts = PurePath(recorded).parts
    if len(parts) < 2 or not VERSION_DIR_RE.match(parts[-1]):
        raise StorageError(f"{short_repr(recorded)} is not a stored model's path")
    return check_strategy_name(parts[-2]), parts[-1]


def locate_model(root: Path | str, recorded: str) -> Path:
    """The directory of a recorded model path under the store ``root`` (see
    ``model_reference_parts``): the one place a recorded path is turned into a directory."""
    strategy, name = model_reference_parts(recorded)
    return Path(root) / strategy / name


class ModelStorage:
    """Saves bundles as new versions and finds them again."""

    def __init__(self, models_dir: Path | str) -> None:
        self.root = Path(models_dir)

    # -- writing ---------------------------------------------------------------------------
    def save(self, bundle: ModelBundle, origin: dict[str, str] | None = None) -> StoredModel:
        """Store ``bundle`` as the next version of its strategy; returns where it went.

        ``origin`` (for example the operation id and the bundle's SHA-256) is written beside
        the bundle as ``origin.json`` in the same atomic rename, so a caller can find out
        after a crash whether a model was already saved (``find_by_origin``).
        """
        bundle.validate()
        strategy = check_strategy_name(bundle.strategy_name)
        combo = combo_name(bundle.symbols, bundle.timeframes)
        strategy_dir = self.root / strategy
        strategy_dir.mkdir(parents=True, exist_ok=True)
        tmp = strategy_dir / f".tmp-{uuid.uuid4().hex}"
        try:
            bundle.write(tmp)
            if origin:
                (tmp / ORIGIN_FILE).write_text(json.dumps(origin, sort_keys=True))
            with self._lock(strategy_dir):
                version = max(self._max_version(strategy_dir), _high_water(strategy_dir)) + 1
                target = strategy_dir / f"{combo}_v{version}"
                os.rename(tmp, target)
                (strategy_dir / HIGH_WATER_FILE).write_text(str(version))
                _fsync_dir(strategy_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("saved model %s version %d at %s", strategy, version, target)
        return self._describe(strategy, version, target)

    @contextmanager
    def _lock(self, strategy_dir: Path) -> Iterator[None]:
        with open(strategy_dir / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------------------
    def _versions(self, strategy_dir: Path) -> list[tuple[int, Path]]:
        if not strategy_dir.is_dir():
            return []
        out = []
        for child in strategy_dir.iterdir():
            match = VERSION_DIR_RE.match(child.name)
            if match and child.is_dir() and (child / METADATA_FILE).is_file():
                out.append((int(match["version"]), child))
        return sorted(out)

    def _max_version(self, strategy_dir: Path) -> int:
        versions = self._versions(strategy_dir)
        return versions[-1][0] if versions else 0

    def _describe(self, strategy: str, version: int, path: Path) -> StoredModel:
        try:
            meta = json.loads((path / METADATA_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise StorageError(f"{path}: unreadable metadata: {exc}") from exc
        summary = meta.get("metrics", {}).get("summary", {})
        return StoredModel(
            strategy=strategy,
            version=version,
            path=path,
            symbols=list(meta.get("symbols", [])),
            timeframes=list(meta.get("timeframes", [])),
            created_at=str(meta.get("created_at", "")),
            metrics=dict(summary),
        )

    def strategies(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and STRATEGY_NAME_RE.match(p.name) and self._versions(p)
        )

    def list_models(self, strategy: str | None = None) -> list[StoredModel]:
        """Every stored version (of one strategy, or of all), oldest first per strategy."""
        names = [check_strategy_name(strategy)] if strategy else self.strategies()
        return [
            self._describe(name, version, path)
            for name in names
            for version, path in self._versions(self.root / name)
        ]

    def get(self, strategy: str, version: int | None = None) -> StoredModel:
        """A specific version, or the latest when ``version`` is None."""
        versions = self._versions(self.root / check_strategy_name(strategy))
        if not versions:
            raise StorageError(f"no stored model for strategy {strategy!r} in {self.root}")
        if version is None:
            v, path = versions[-1]
            return self._describe(strategy, v, path)
        for v, path in versions:
            if v == version:
                return self._describe(strategy, v, path)
        known = ", ".join(str(v) for v, _ in versions)
        raise StorageError(f"strategy {strategy!r} has no version {version}; stored: {known}")

    def latest(self, strategy: str) -> StoredModel | None:
        try:
            return self.get(strategy)
        except StorageError:
            return None

    def find_by_origin(self, strategy: str, **match: str) -> StoredModel | None:
        """The latest version of ``strategy`` whose ``origin.json`` has all of ``match``."""
        for version, path in reversed(self._versions(self.root / check_strategy_name(strategy))):
            try:
                origin = json.loads((path / ORIGIN_FILE).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(origin, dict) and all(origin.get(k) == v for k, v in match.items()):
                return self._describe(strategy, version, path)
        return None

    def load(self, model: StoredModel) -> ModelBundle:
        return ModelBundle.read(model.path)


def _high_water(strategy_dir: Path) -> int:
    try:
        return int((strategy_dir / HIGH_WATER_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
