"""Aliases and tags of stored models, in the backend's SQLite database beside ``models``.

Tables (created on first use, in the same database as ``Store``):

- ``model_aliases(strategy_name, alias) -> version``: one row per alias, so moving an alias
  is one UPDATE, atomic by construction;
- ``model_tags(strategy_name, version, tag)``;
- ``operation_tags(operation_id, tag)``: tags asked for at CreateTraining, copied to the
  model once it is registered (``model_tags_seeded`` records that the copy happened, so a tag
  removed later stays removed).

Every change runs in one transaction of the store's ``Database`` (its writer thread): a
model's row, its aliases and its tags go together. Reads use its read connections.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.backend.records import ModelRecord, model_record
from ktrdr.backend.store import Store
from ktrdr.backend.tables import Tables, reads, writes
from ktrdr.echo import short_repr

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}\Z")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=-]{0,63}\Z")
RESERVED_ALIASES = frozenset({"latest"})
MAX_TAGS = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_aliases (
    strategy_name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (strategy_name, alias)
);
CREATE TABLE IF NOT EXISTS model_tags (
    strategy_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (strategy_name, version, tag)
);
CREATE TABLE IF NOT EXISTS model_tags_seeded (
    strategy_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (strategy_name, version)
);
CREATE TABLE IF NOT EXISTS operation_tags (
    operation_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (operation_id, tag)
);
-- ListModels: filtering by alias or tag in (strategy, version) order, and a page's aliases.
CREATE INDEX IF NOT EXISTS model_aliases_by_alias ON model_aliases (alias, strategy_name, version);
CREATE INDEX IF NOT EXISTS model_aliases_by_version ON model_aliases (strategy_name, version);
CREATE INDEX IF NOT EXISTS model_tags_by_tag ON model_tags (tag, strategy_name, version);
"""


def invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def check_alias(alias: str, field_name: str = "alias") -> str:
    if not ALIAS_RE.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise invalid(
            f"{field_name}: {short_repr(alias)} is not an alias: use 1-40 lowercase letters, "
            "digits, '_' or '-', starting with a letter (not 'latest')"
        )
    return alias


def check_tags(tags: Iterable[str], field_name: str = "tags") -> list[str]:
    out = sorted(set(tags))
    for tag in out:
        if not TAG_RE.fullmatch(tag):
            raise invalid(
                f"{field_name}: {short_repr(tag)} is not a tag: use 1-64 letters, digits or "
                "'._:=-', starting with a letter or digit"
            )
    if len(out) > MAX_TAGS:
        raise invalid(f"{field_name}: at most {MAX_TAGS} tags, got {len(out)}")
    return out


@dataclass(frozen=True)
class ModelRow:
    """A registered model with its aliases, tags and the operation that trained it."""

    model: ModelRecord
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    owner: str = ""
    mode: int = 0
    host_address: str = ""
    result: bytes | None = None  # the operation's serialized ResultSummary
    overrides: bytes | None = None  # the operation's serialized TrainingOverrides


# A model with what its operation says of it: ListModels' and resolve's rows.
ROW_SELECT = (
    "SELECT m.*, o.owner AS owner, o.mode AS mode, o.host_address AS host_address, "
    "o.result AS result, o.overrides AS overrides FROM models m "
    "LEFT JOIN operations o ON o.id = m.operation_id"
)


def model_row(
    row: sqlite3.Row,
    aliases: dict[tuple[str, int], list[str]],
    tags: dict[tuple[str, int], list[str]],
) -> ModelRow:
    key = (row["strategy_name"], row["version"])
    return ModelRow(
        model=model_record(row),
        aliases=sorted(aliases.get(key, [])),
        tags=sorted(tags.get(key, [])),
        owner=row["owner"] or "",
        mode=row["mode"] or 0,
        host_address=row["host_address"] or "",
        result=row["result"],
        overrides=row["overrides"],
    )


def _migrate(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)
    # A database from before models.tags_seeded: what model_tags_seeded recorded.
    db.execute(
        "UPDATE models SET tags_seeded = 1 WHERE tags_seeded = 0 AND EXISTS (SELECT 1 "
        "FROM model_tags_seeded s WHERE s.strategy_name = models.strategy_name AND "
        "s.version = models.version)"
    )


class ModelRegistry(Tables):
    """Reads and changes models, aliases and tags in ``store``'s database."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.database)
        self.store = store
        self.database.migrate("model registry", _migrate)

    # -- reading ---------------------------------------------------------------------------
    def rows(self, strategy_name: str = "") -> list[ModelRow]:
        """Every registered model (of one strategy), ordered by strategy, then version."""
        self.seed()
        return self._rows(strategy_name)

    @reads
    def _rows(self, db: sqlite3.Connection, strategy_name: str) -> list[ModelRow]:
        where, args = ("WHERE m.strategy_name = ?", (strategy_name,)) if strategy_name else ("", ())
        rows = db.execute(
            f"{ROW_SELECT} {where} ORDER BY m.strategy_name, m.version", args
        ).fetchall()
        where = "WHERE strategy_name = ?" if strategy_name else ""
        aliases = self._grouped(db, "alias", "model_aliases", where, args)
        tags = self._grouped(db, "tag", "model_tags", where, args)
        return [model_row(row, aliases, tags) for row in rows]

    def rows_for(self, db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[ModelRow]:
        """``ModelRow``s of rows selected with ``ROW_SELECT`` (a page), with their aliases
        and tags (looked up by key: the cost follows the page, not the store)."""
        if not rows:
            return []
        keys = [(row["strategy_name"], row["version"]) for row in rows]
        args = tuple(value for key in keys for value in key)
        aliases = self._by_keys(db, "alias", "model_aliases", len(keys), args)
        tags = self._by_keys(db, "tag", "model_tags", len(keys), args)
        return [model_row(row, aliases, tags) for row in rows]

    @staticmethod
    def _by_keys(
        db: sqlite3.Connection, column: str, table: str, count: int, args: tuple[object, ...]
    ) -> dict[tuple[str, int], list[str]]:
        """``column`` of ``table`` for ``count`` (strategy, version) keys: a join on the keys,
        one index seek each (``(a, b) IN (VALUES ...)`` would scan the whole table)."""
        keys = "(VALUES " + ", ".join(["(?, ?)"] * count) + ") AS k"
        sql = (
            f"SELECT t.strategy_name, t.version, t.{column} FROM {keys} JOIN {table} t "
            "ON t.strategy_name = k.column1 AND t.version = k.column2"
        )
        out: dict[tuple[str, int], list[str]] = {}
        for strategy, version, value in db.execute(sql, args).fetchall():
            out.setdefault((strategy, version), []).append(value)
        return out

    def seed(self) -> None:
        """Copy CreateTraining tags to the models registered since (an index seek when none)."""
        if self._unseeded():
            self._seed()

    @writes
    def _seed(self, db: sqlite3.Connection) -> None:
        self._seed_tags(db)

    @staticmethod
    def _grouped(
        db: sqlite3.Connection, column: str, table: str, where: str, args: tuple[object, ...]
    ) -> dict[tuple[str, int], list[str]]:
        out: dict[tuple[str, int], list[str]] = {}
        sql = f"SELECT strategy_name, version, {column} FROM {table} {where}"
        for strategy, version, value in db.execute(sql, args).fetchall():
            out.setdefault((strategy, version), []).append(value)
        return out

    @reads
    def _unseeded(self, db: sqlite3.Connection) -> bool:
        row = db.execute("SELECT 1 FROM models WHERE tags_seeded = 0 LIMIT 1").fetchone()
        return row is not None

    @staticmethod
    def _seed_tags(db: sqlite3.Connection) -> None:
        """Copy CreateTraining tags to models registered since the last read, once each."""
        unseeded = db.execute(
            "SELECT strategy_name, version, operation_id FROM models WHERE tags_seeded = 0"
        ).fetchall()
        for strategy, version, operation_id in unseeded:
            already = db.execute(  # seeded by a backend from before models.tags_seeded
                "SELECT 1 FROM model_tags_seeded WHERE strategy_name = ? AND version = ?",
                (strategy, version),
            ).fetchone()
            if already is None:
                db.execute(
                    "INSERT OR IGNORE INTO model_tags (strategy_name, version, tag) "
                    "SELECT ?, ?, tag FROM operation_tags WHERE operation_id = ?",
                    (strategy, version, operation_id),
                )
                db.execute(
                    "INSERT INTO model_tags_seeded (strategy_name, version) VALUES (?, ?)",
                    (strategy, version),
                )
            db.execute(
                "UPDATE models SET tags_seeded = 1 WHERE strategy_name = ? AND version = ?",
                (strategy, version),
            )

    @reads
    def alias_version(self, db: sqlite3.Connection, strategy_name: str, alias: str) -> int | None:
        row = db.execute(
            "SELECT version FROM model_aliases WHERE strategy_name = ? AND alias = ?",
            (strategy_name, alias),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- changing --------------------------------------------------------------------------
    @writes
    def set_operation_tags(
        self, db: sqlite3.Connection, operation_id: str, tags: list[str]
    ) -> None:
        if not tags:
            return
        db.executemany(
            "INSERT OR IGNORE INTO operation_tags (operation_id, tag) VALUES (?, ?)",
            [(operation_id, tag) for tag in tags],
        )

    @writes
    def set_alias(
        self, db: sqlite3.Connection, strategy_name: str, alias: str, version: int
    ) -> int:
        """Point ``alias`` at ``version`` (which must be registered); the previous version or 0."""
        exists = db.execute(
            "SELECT 1 FROM models WHERE strategy_name = ? AND version = ?",
            (strategy_name, version),
        ).fetchone()
        if exists is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"strategy {strategy_name!r} has no stored version {version}: "
                "'ktrdr models list' shows the stored versions",
            )
        row = db.execute(
            "SELECT version FROM model_aliases WHERE strategy_name = ? AND alias = ?",
            (strategy_name, alias),
        ).fetchone()
        db.execute(
            "INSERT INTO model_aliases (strategy_name, alias, version) VALUES (?, ?, ?) "
            "ON CONFLICT(strategy_name, alias) DO UPDATE SET version = excluded.version",
            (strategy_name, alias, version),
        )
        return 0 if row is None else int(row[0])

    @writes
    def delete_alias(self, db: sqlite3.Connection, strategy_name: str, alias: str) -> int:
        row = db.execute(
            "SELECT version FROM model_aliases WHERE strategy_name = ? AND alias = ?",
            (strategy_name, alias),
        ).fetchone()
        if row is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"strategy {strategy_name!r} has no alias {alias!r}",
            )
        db.execute(
            "DELETE FROM model_aliases WHERE strategy_name = ? AND alias = ?",
            (strategy_name, alias),
        )
        return int(row[0])

    @writes
    def change_tags(
        self,
        db: sqlite3.Connection,
        strategy_name: str,
        version: int,
        add: list[str],
        remove: list[str],
    ) -> list[str]:
        self._seed_tags(db)
        db.executemany(
            "DELETE FROM model_tags WHERE strategy_name = ? AND version = ? AND tag = ?",
            [(strategy_name, version, tag) for tag in remove],
        )
        db.executemany(
            "INSERT OR IGNORE INTO model_tags (strategy_name, version, tag) VALUES (?, ?, ?)",
            [(strategy_name, version, tag) for tag in add],
        )
        tags = [
            r[0]
            for r in db.execute(
                "SELECT tag FROM model_tags WHERE strategy_name = ? AND version = ? ORDER BY tag",
                (strategy_name, version),
            ).fetchall()
        ]
        if len(tags) > MAX_TAGS:
            raise invalid(f"add: a model carries at most {MAX_TAGS} tags, would be {len(tags)}")
        return tags

    @writes
    def delete(
        self,
        db: sqlite3.Connection,
        strategy_name: str,
        version: int,
        *,
        force: bool,
        move_out: Callable[[], None],
    ) -> list[str]:
        """Unregister a version with its aliases and tags; returns the aliases removed.

        Refuses (FAILED_PRECONDITION) a version with aliases unless ``force``. ``move_out``
        (moving the directory out of the store) runs inside the transaction, after the
        checks: when it raises, nothing is unregistered.
        """
        aliases = [
            r[0]
            for r in db.execute(
                "SELECT alias FROM model_aliases WHERE strategy_name = ? AND version = ? "
                "ORDER BY alias",
                (strategy_name, version),
            ).fetchall()
        ]
        if aliases and not force:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{strategy_name} v{version} carries alias(es) {', '.join(aliases)}: move "
                "or delete them first, or delete with force (--force) to remove them too",
            )
        move_out()
        key = (strategy_name, version)
        tables = ("model_aliases", "model_tags", "model_tags_seeded", "model_metrics", "models")
        for table in tables:
            db.execute(f"DELETE FROM {table} WHERE strategy_name = ? AND version = ?", key)
        return aliases


__all__ = [
    "ALIAS_RE",
    "MAX_TAGS",
    "TAG_RE",
    "ModelRegistry",
    "ModelRow",
    "check_alias",
    "check_tags",
]
