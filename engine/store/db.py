"""Connections and transactions on SQLite or PostgreSQL, and the schema's migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns).
Write transactions start with ``BEGIN IMMEDIATE`` and are serialised in-process by a lock,
so threads queue in Python instead of spinning in SQLite's busy handler; the busy timeout
only covers other processes sharing the file. PostgreSQL writes run at READ COMMITTED;
writers lock the one history-chain row they append to (see ``engine.history``). Reads run
in one snapshot on both databases (``Database.read``).

On the hot path, statements are built once at import and executed with parameters: building
a Core statement per call costs several times more than executing it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url

SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
MIGRATIONS = Path(__file__).parent.parent / "migrations"
# Each migration's revision is its file's four-digit prefix (0001_initial_schema.py: "0001").
NEWEST_REVISION = max(
    p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
)
_MIGRATION_LOCK = 0x7A697A6869  # "zizhi": the advisory lock that serialises migrations
# How PostgreSQL reads: one snapshot for the whole transaction, and no writes in it.
_SNAPSHOT: dict[str, Any] = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


def normalize_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class UnknownSchema(RuntimeError):
    """The database's schema is at a migration this version does not know."""


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> None:
        self.url = make_url(normalize_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
                raise ValueError(f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS}")
            self.engine = _sqlite_engine(self.url, sqlite_synchronous, pool_size)
        elif self.url.get_backend_name() == "postgresql":
            self.engine = sa.create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
            )
        else:
            raise ValueError(
                f"unsupported database {self.url.get_backend_name()!r}; "
                "use sqlite:///… or postgresql+psycopg://…"
            )
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._writer: Connection | None = None
        self._peek_lock = threading.Lock()
        self._peeker: Any = None  # a DB-API connection of its own, in autocommit

    def peek(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """The first row of one tiny read, on a connection kept for such reads, outside any
        transaction: it sees whatever was last committed, by any process.

        For a per-request check that must stay cheap (the revocation generation a cached
        token is checked against): no pool checkout, no BEGIN/COMMIT, no statement building.
        ``sql`` uses ``?`` placeholders. A broken connection is replaced once.
        """
        if not self.is_sqlite:
            sql = sql.replace("?", "%s")
        with self._peek_lock:
            for attempt in (1, 2):
                if self._peeker is None:
                    self._peeker = self._autocommit_connection()
                try:
                    cursor = self._peeker.cursor()
                    try:
                        cursor.execute(sql, params)
                        row = cursor.fetchone()
                    finally:
                        cursor.close()
                    return None if row is None else tuple(row)
                except self.engine.dialect.loaded_dbapi.Error as exc:
                    self._close_peeker()
                    if attempt == 2:
                        raise sa.exc.DBAPIError.instance(
                            sql,
                            None,
                            exc,
                            self.engine.dialect.loaded_dbapi.Error,
                            hide_parameters=True,
                            dialect=self.engine.dialect,
                        ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _autocommit_connection(self) -> Any:
        proxy = self.engine.raw_connection()  # runs the connect hooks (SQLite's pragmas)
        connection: Any = proxy.driver_connection
        proxy.detach()  # ours alone from now on: the pool neither resets nor reuses it
        if not self.is_sqlite:
            connection.autocommit = True
        return connection

    def _close_peeker(self) -> None:
        if self._peeker is not None:
            try:
                self._peeker.close()
            except Exception:  # noqa: BLE001 - already broken; dropping it is all we want
                pass
            self._peeker = None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that rolls back unless the caller calls ``conn.commit()``."""
        if self._write_lock is None:
            with self.engine.connect() as conn:
                yield from _transaction(conn)
            return
        with self._write_lock:
            # SQLite has one writer at a time anyway: keep its connection between
            # transactions instead of checking one out of the pool for each.
            if self._writer is None:
                self._writer = self.engine.connect()
            try:
                yield from _transaction(self._writer, begin="BEGIN IMMEDIATE")
            finally:
                if self._writer.invalidated:  # the connection broke: start afresh next time
                    self._writer.close()
                    self._writer = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction that sees one consistent snapshot for all its statements.

        On SQLite (WAL) a deferred transaction reads one snapshot from its first statement.
        On PostgreSQL it runs at REPEATABLE READ, READ ONLY: under READ COMMITTED each
        statement would see its own moment, so a read that spans statements (verify, an
        export, a statement, ``as_of``) could pair chain heads from one moment with events
        from another and report a fault that is not there.
        """
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(**_SNAPSHOT)
            with conn.begin():
                if self.is_sqlite:
                    conn.exec_driver_sql("BEGIN")
                yield conn

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration; safe to run concurrently.

        A schema already at the newest migration is seen with one read, without loading
        Alembic (a third of a second on every command)."""
        if self.schema_revision() == [NEWEST_REVISION]:
            return
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.write() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "heads")  # every head, should branches ever diverge
            except CommandError as exc:  # most likely written by a newer Zizhi
                raise UnknownSchema(str(exc)) from exc
            conn.commit()

    def schema_revision(self) -> list[str] | None:
        """The migrations the schema is at (Alembic's ``alembic_version``), None: no schema."""
        with self.read() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return sorted(
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )

    def dispose(self) -> None:
        with self._peek_lock:
            self._close_peeker()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()


def _transaction(conn: Connection, begin: str | None = None) -> Iterator[Connection]:
    transaction = conn.begin()
    try:
        if begin is not None:  # straight to the driver: it runs once per write
            _begin(conn, begin)
        yield conn
    finally:
        if transaction.is_active:
            transaction.rollback()


def _begin(conn: Connection, statement: str) -> None:
    dialect = conn.dialect
    try:
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except dialect.loaded_dbapi.Error as exc:  # e.g. another process held the file too long
        raise sa.exc.DBAPIError.instance(
            statement,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
        ) from exc


@functools.cache
def insert_ignore(dialect: str, table: sa.Table, *returning: sa.Column[Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING …: yields a row only if it inserted.

    Built once per dialect and table; execute it with the row's values as parameters.
    """
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing().returning(*returning)


def _sqlite_engine(url: sa.URL, synchronous: str, pool_size: int) -> Engine:
    if url.database in (None, "", ":memory:"):
        raise ValueError("Zizhi needs a SQLite file, not an in-memory database")
    engine = sa.create_engine(
        url,
        hide_parameters=True,  # errors and logs never carry residents' data or secrets
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        # The sqlite3 module would BEGIN (deferred) on its own before the first write;
        # Database.write and .read issue BEGIN themselves instead.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
