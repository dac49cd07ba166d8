"""Hot-path statements: Core constructs compiled once per dialect, run on the DB-API cursor.

Every transition issues the same handful of statements (lock the project and its chain
head, append events, move money, save, move the head). Through SQLAlchemy's execution
machinery each costs about 30 µs in place, on top of what the driver needs — most of the
engine's overhead over the same rows written by hand (docs/performance.md). So these few
statements are written as ordinary Core constructs on the SQLModel tables, compiled by
SQLAlchemy for the connection's dialect once, and then run directly on the driver's cursor
inside the same transaction.

They bind and return only integers, text, NULL and UTC datetimes. Datetimes are handled the
way ``engine.tables.UTCDateTime`` does: naive UTC text on SQLite, aware values on PostgreSQL.
Driver errors are wrapped into SQLAlchemy's exception classes (with parameters hidden), so
callers and logs see the same errors as from any other statement. SQLAlchemy's statement
events and ``echo`` do not see these statements; everything else goes through Core as usual.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import UTCDateTime

Row = Any  # a namedtuple made for the statement's columns


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...] | None  # positional parameter order; None: named (pyformat)
    defaults: dict[str, Any]  # values the construct itself holds, such as the 1 of version + 1
    row: Callable[..., Row] | None  # None: the statement returns no rows
    datetimes: tuple[int, ...]  # result positions to turn back into aware datetimes


class Prepared:
    """A statement built once; ``first``/``one``/``run`` execute it with parameters."""

    def __init__(self, construct: sa.ClauseElement | Callable[[str], sa.ClauseElement]) -> None:
        self._construct = construct
        self._plans: dict[tuple[str, frozenset[str]], _Plan] = {}

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Row | None:
        cursor, plan = self._execute(conn, params)
        found = cursor.fetchone()
        return None if found is None else _row(plan, found)

    def one(self, conn: Connection, params: Mapping[str, Any]) -> Row:
        found = self.first(conn, params)
        if found is None:
            raise sa.exc.NoResultFound("No row was found when one was required")
        return found

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Row]:
        cursor, plan = self._execute(conn, params)
        return [_row(plan, found) for found in cursor.fetchall()]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a statement that returns no rows; answer how many rows it changed."""
        cursor, _ = self._execute(conn, params)
        return int(cursor.rowcount)

    def _execute(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Plan]:
        dialect = conn.dialect
        key = (dialect.name, frozenset(params))
        plan = self._plans.get(key) or self._plan(dialect, key)
        sqlite = dialect.name == "sqlite"
        values = {**plan.defaults, **params}
        if plan.names is None:
            args: Any = {k: _bind(v, sqlite) for k, v in values.items()}
        else:
            args = tuple(_bind(values[name], sqlite) for name in plan.names)
        driver = conn.connection.driver_connection
        try:
            return driver.execute(plan.sql, args), plan  # type: ignore[union-attr]
        except dialect.loaded_dbapi.Error as exc:
            invalidated = dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
            if invalidated:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                plan.sql,
                None,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=invalidated,
                dialect=dialect,
            ) from exc

    def _plan(self, dialect: sa.Dialect, key: tuple[str, frozenset[str]]) -> _Plan:
        construct = self._construct(dialect.name) if callable(self._construct) else self._construct
        compiled: Any = construct.compile(dialect=dialect, column_keys=sorted(key[1]))
        columns: Sequence[Any] = list(getattr(construct, "exported_columns", ()))
        row: Any = namedtuple("Row", [c.key for c in columns]) if columns else None
        plan = _Plan(
            sql=compiled.string,
            names=tuple(compiled.positiontup) if compiled.positional else None,
            defaults={k: v for k, v in compiled.params.items() if v is not None},
            row=row._make if row is not None else None,
            datetimes=tuple(i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime)),
        )
        self._plans[key] = plan
        return plan


def _bind(value: Any, sqlite: bool) -> Any:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        # SQLAlchemy's SQLite DATETIME text, so Core reads these rows back unchanged.
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value
    return value


def _row(plan: _Plan, values: Sequence[Any]) -> Row:
    if plan.datetimes:
        values = list(values)
        for i in plan.datetimes:
            values[i] = _datetime(values[i])
    assert plan.row is not None, "this statement returns no rows"
    return plan.row(values)


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
