"""ListModels' pages in SQL: filters and orders on indexed columns, keyset page tokens.

Orders: by strategy, then version (the primary key); or by one test metric (``order_by``,
rows of ``model_metrics``; ``descending`` for highest first), ties by strategy and version,
then the versions without that metric by strategy and version. A page token is the position
of the page's last row in that order (with the order and filters it was made for), so one
page costs the same at any store size and at any depth, and rows added or deleted between
pages never shift the next page.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sqlite3
from dataclasses import dataclass

from ktrdr.backend.models.registry import ROW_SELECT, ModelRegistry, ModelRow, invalid

MAX_TOKEN_CHARS = 1024
_KIND = "models/2"
_BAD_TOKEN = (
    "page_token: not a token from a previous ListModels response with these filters and "
    "order (send it back unchanged, with the same strategy_name, alias, tag, order_by and "
    "descending)"
)


@dataclass(frozen=True)
class Query:
    """One ListModels request's filters and order (already checked)."""

    strategy: str = ""
    alias: str = ""
    tag: str = ""
    order_by: str = ""
    descending: bool = False

    def fingerprint(self) -> list[object]:
        return [self.strategy, self.alias, self.tag, self.order_by, self.descending]


@dataclass(frozen=True)
class Position:
    """Where a page ended: ``phase`` 0 among versions with the metric (``value`` set), 1
    among those without it (or the only phase, without ``order_by``)."""

    phase: int
    strategy: str
    version: int
    value: float | None = None


def encode_token(query: Query, position: Position) -> str:
    body = [_KIND, query.fingerprint(), position.phase, position.strategy, position.version]
    body.append(position.value)
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def decode_token(token: str, query: Query) -> Position | None:
    """The position a token of a previous page names; INVALID_ARGUMENT for anything else."""
    if not token:
        return None
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("too long")
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        kind, fingerprint, phase, strategy, version, value = body
        if kind != _KIND or fingerprint != query.fingerprint():
            raise ValueError("another listing's token")
        if phase not in (0, 1) or (phase == 0 and not query.order_by):
            raise ValueError("phase")
        if not isinstance(strategy, str) or type(version) is not int:
            raise ValueError("key")
        if phase == 0:
            if type(value) not in (int, float) or not math.isfinite(value):
                raise ValueError("value")
            return Position(0, strategy, version, float(value))
        if value is not None:
            raise ValueError("value")
        return Position(1, strategy, version)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid(_BAD_TOKEN) from None


def page(
    registry: ModelRegistry, query: Query, after: Position | None, size: int
) -> tuple[list[ModelRow], str]:
    """Up to ``size`` rows after ``after``, and the next page's token ("" on the last)."""
    registry.seed()

    def read(db: sqlite3.Connection) -> tuple[list[tuple[int, sqlite3.Row]], list[ModelRow]]:
        found: list[tuple[int, sqlite3.Row]] = []  # (phase, row), one more than asked
        if query.order_by and (after is None or after.phase == 0):
            sql, args = _select(query, after, size + 1, with_metric=True)
            found += [(0, row) for row in db.execute(sql, args).fetchall()]
        if len(found) <= size:
            start = after if after is not None and after.phase == 1 else None
            sql, args = _select(query, start, size + 1 - len(found), with_metric=False)
            found += [(1, row) for row in db.execute(sql, args).fetchall()]
        return found, registry.rows_for(db, [row for _, row in found[:size]])

    found, rows = registry.database.read(read)
    kept = found[:size]
    token = ""
    if len(found) > size:
        phase, last = kept[-1]
        value = last["metric_value"] if phase == 0 else None
        position = Position(phase, last["strategy_name"], last["version"], value)
        token = encode_token(query, position)
    return rows, token


def _select(
    query: Query, after: Position | None, limit: int, *, with_metric: bool
) -> tuple[str, list[object]]:
    """One phase's query: versions with the metric (in its order), or the others (all
    versions without ``order_by``) by strategy and version.

    The order and the page's start are written on the table that leads (the metric's, the
    alias's or the tag's rows when filtered, else the models'), so that its index gives the
    order and the start is a seek: a page reads about ``limit`` rows of each table.
    """
    joins: list[str] = []
    where: list[str] = []
    args: list[object] = []
    columns = ROW_SELECT
    on = "m.strategy_name = {0}.strategy_name AND m.version = {0}.version"
    if with_metric:
        columns = ROW_SELECT.replace(" FROM models m", ", x.value AS metric_value FROM models m")
        joins.append(f"JOIN model_metrics x ON {on.format('x')} AND x.name = ?")
        args.append(query.order_by)
    if query.alias:
        joins.append(f"JOIN model_aliases a ON {on.format('a')} AND a.alias = ?")
        args.append(query.alias)
    if query.tag:
        joins.append(f"JOIN model_tags t ON {on.format('t')} AND t.tag = ?")
        args.append(query.tag)
    lead = "x" if with_metric else "a" if query.alias else "t" if query.tag else "m"
    if query.strategy:
        where.append(f"{lead}.strategy_name = ?")
        args.append(query.strategy)
    if query.order_by and not with_metric:
        where.append(
            f"NOT EXISTS (SELECT 1 FROM model_metrics n WHERE {on.format('n')} AND n.name = ?)"
        )
        args.append(query.order_by)
    key = f"{lead}.strategy_name, {lead}.version"
    if with_metric:
        direction, beyond = ("DESC", "<") if query.descending else ("", ">")
        order = f"x.value {direction}, {key}"
        if after is not None:  # the first clause is the index range, the second exact
            where.append(
                f"x.value {beyond}= ? AND "
                f"(x.value {beyond} ? OR (x.value = ? AND ({key}) > (?, ?)))"
            )
            args += [after.value, after.value, after.value, after.strategy, after.version]
    else:
        order = key
        if after is not None:
            where.append(f"({key}) > (?, ?)")
            args += [after.strategy, after.version]
    sql = columns + " " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order} LIMIT ?"
    args.append(limit)
    return sql, args


__all__ = ["MAX_TOKEN_CHARS", "Position", "Query", "decode_token", "encode_token", "page"]
