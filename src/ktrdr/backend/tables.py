"""Stores as sets of tables in ``Database``, with methods for threads and for the event loop.

A store method is written with the connection as its first argument and marked ``@reads``
(a read connection, one snapshot) or ``@writes`` (one transaction on the writer thread)::

    @reads
    def get_operation(self, db: sqlite3.Connection, operation_id: str) -> OperationRecord: ...

and called without it: ``store.get_operation(op_id)`` waits for the answer (threads, the
CLI); ``await store.get_operation.aio(op_id)`` is the form for ``async def`` code, which never
blocks the event loop (the writer's future, or a reader thread).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ktrdr.backend.database import Database

P = ParamSpec("P")
R = TypeVar("R")


class Tables:
    """A store: its tables in ``database`` (given a path, it opens its own ``Database`` and
    closes it with the store: the CLI, tests)."""

    def __init__(self, database: Database | Path | str) -> None:
        if isinstance(database, Database):
            self.database, self._owns_database = database, False
        else:
            self.database, self._owns_database = Database(database), True

    @property
    def path(self) -> Path:
        return self.database.path

    def close(self) -> None:
        """Close the database when this store opened it (a shared one is closed by its owner)."""
        if self._owns_database:
            self.database.close()


S = TypeVar("S", bound=Tables)


class Bound(Generic[P, R]):
    """A store method bound to its store: call it (threads) or await ``aio`` (event loop)."""

    def __init__(
        self, store: Tables, fn: Callable[Concatenate[Any, sqlite3.Connection, P], R], write: bool
    ) -> None:
        self.store = store
        self.fn = fn
        self.write = write
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def job(self, *args: P.args, **kwargs: P.kwargs) -> Callable[[sqlite3.Connection], R]:
        """The method as a job for ``Database`` (to combine several in one transaction)."""
        store, fn = self.store, self.fn
        return lambda db: fn(store, db, *args, **kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        job = self.job(*args, **kwargs)
        database = self.store.database
        return database.write(job) if self.write else database.read(job)

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> R:
        job = self.job(*args, **kwargs)
        database = self.store.database
        return await (database.awrite(job) if self.write else database.aread(job))


class Statement(Generic[S, P, R]):
    """A store method marked ``@reads`` or ``@writes`` (see the module)."""

    def __init__(self, fn: Callable[Concatenate[S, sqlite3.Connection, P], R], write: bool) -> None:
        self.fn = fn
        self.write = write
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Statement[S, P, R]: ...

    @overload
    def __get__(self, obj: S, owner: type | None = None) -> Bound[P, R]: ...

    def __get__(self, obj: S | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return Bound(obj, self.fn, self.write)


def reads(fn: Callable[Concatenate[S, sqlite3.Connection, P], R]) -> Statement[S, P, R]:
    """A store method that reads (a read connection; never waits for the writer)."""
    return Statement(fn, write=False)


def writes(fn: Callable[Concatenate[S, sqlite3.Connection, P], R]) -> Statement[S, P, R]:
    """A store method that writes (one transaction on the writer thread)."""
    return Statement(fn, write=True)


__all__ = ["Bound", "Statement", "Tables", "reads", "writes"]
