"""The verifier's reads: whole tables as plain DBAPI tuples, every time as its ``iso`` text.

Verification reads every event, every ledger entry and every fact row; SQLAlchemy's Row
objects and its per-value datetime processing cost more than the checks themselves. So the
events and entries are read through the connection's own DBAPI cursor — the same
transaction, hence the same snapshot (on PostgreSQL a server-side cursor, so a million rows
never sit in memory at once) — and each time column arrives as the text ``iso`` gives it
(``2026-03-01T04:05:06.000007+00:00``): that is what an event's hash covers, and two times
are equal exactly when their texts are, so the checks never build a datetime.

* SQLite stores a time as naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``; SQL turns that
  into the ``iso`` text. A stored value of any other shape (written by hand) is marked and
  read here the way the column's type reads it, then given to ``iso`` — as a slow path.
* PostgreSQL renders ``timestamptz`` in UTC with ``to_char`` in the same shape.

``EventHasher`` builds an event's hash input by concatenation, byte for byte what
``history.event_hash`` hashes (``canonical_json`` of a list of strings, ints and nulls); the
property test in ``tests/property/test_verify_hash.py`` holds it to that.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.history import event_hash, iso
from engine.store.tables import UTCDateTime, events

# A time SQLite stores as the engine writes it; anything else takes the slow path.
_SQLITE_STAMP = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*"
SLOW = "!"  # prefix marking a SQLite time stored in another shape
_BATCH = 10_000
_CURSORS = itertools.count()

# The columns of an event, in the order ``event_rows`` yields them.
EVENT_COLUMNS = (
    "id",
    "chain",
    "seq",
    "at",
    "actor",
    "role",
    "community_id",
    "project_id",
    "type",
    "data",
    "prev_hash",
    "hash",
)
ID, CHAIN, SEQ, AT, ACTOR, ROLE, COMMUNITY, PROJECT, TYPE, DATA, PREV, HASH = range(12)


_paused = 0  # checks running that paused the cyclic garbage collector
_was_enabled = False
_pausing = threading.Lock()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a check runs, on again when the last ends.

    A check keeps hundreds of thousands of small objects alive at once (a community's
    expected rows, the ledger's events), and the collector would walk all of them again
    and again as more are made: 15–20 % of a million events' check, for nothing, as the
    check makes no reference cycles. Memory is still freed by reference counting."""
    global _paused, _was_enabled
    with _pausing:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _pausing:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def load_data(text: str) -> Any:
    """An event's ``data`` (JSON text) as Python values, exactly as ``json.loads`` reads it.

    Decoding every event's data was a quarter of verification's work, so it goes through
    ``orjson``, twice as fast even with the check that follows. ``orjson`` reads a number
    beyond 64 bits as a float and keeps the last of repeated keys silently, so its reading
    is taken only when writing it back gives the very same text (as the engine's canonical
    JSON always does); any other text, and any it refuses (``NaN``, a lone surrogate), is
    read by ``json``: the result never depends on which parser read it."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    if orjson.dumps(value) == text.encode():
        return value
    return json.loads(text)


def iso_text(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    """``column`` (a ``UTCDateTime``) as the text ``iso`` gives its value, computed in SQL."""
    if dialect == "sqlite":
        stored = sa.type_coerce(column, sa.Text)
        # Exactly 26 characters: ``%f`` always writes six digits.
        strict = sa.and_(stored.op("GLOB")(_SQLITE_STAMP), sa.func.length(stored) == 26)
        as_iso = sa.func.substr(stored, 1, 10) + "T" + sa.func.substr(stored, 12) + "+00:00"
        return sa.case((strict, as_iso), else_=SLOW + stored)
    return sa.func.to_char(sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')


def selectable(table: sa.Table, dialect: str) -> list[sa.ColumnElement[Any]]:
    """Every column of ``table``, its times as ``iso`` text (``fix_times`` finishes them)."""
    return [
        iso_text(c, dialect).label(c.name) if isinstance(c.type, UTCDateTime) else c
        for c in table.columns
    ]


def time_positions(table: sa.Table) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, UTCDateTime))


class SlowTimes:
    """Reads a SQLite time stored in a shape the engine never writes, as the column would."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._read = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)

    def __call__(self, value: str | None) -> str | None:
        if value is None or not value.startswith(SLOW):
            return value
        stored = value[len(SLOW) :]
        moment = self._read(stored) if self._read is not None else stored
        assert isinstance(moment, datetime)
        return iso(moment)


def fix_times(rows: Sequence[Any], positions: tuple[int, ...], slow: SlowTimes) -> list[Any]:
    """``rows`` (tuples) with any time marked for the slow path read the slow way."""
    return [fix_row(row, positions, slow) for row in rows]


def fix_row(row: Any, positions: tuple[int, ...], slow: SlowTimes) -> Any:
    """One row (a tuple) with any time marked for the slow path read the slow way."""
    for i in positions:
        value = row[i]
        if isinstance(value, str) and value.startswith(SLOW):
            return tuple(slow(v) if j in positions else v for j, v in enumerate(row))
    return row


def raw_rows(conn: Connection, statement: sa.Select[Any], batch: int = _BATCH) -> Iterator[Any]:
    """The statement's rows as DBAPI tuples, in batches, in this connection's transaction."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    params: Any = (
        tuple(values[name] for name in compiled.positiontup or ())
        if compiled.positional
        else values
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    if conn.dialect.name == "postgresql":
        # A server-side cursor: the rows come over in batches, never all at once. Named
        # apart, as one may be open while another is read (a community's facts, at the
        # end of its chain).
        cursor = driver.cursor(name=f"zizhi_verify_{next(_CURSORS)}")
        cursor.itersize = batch
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


def event_rows(conn: Connection, where: sa.ColumnElement[bool] | None = None) -> Iterator[Any]:
    """Events (those matching ``where``) in chain order, ``(chain, seq)``, as tuples of
    ``EVENT_COLUMNS`` with ``at`` as its ``iso`` text."""
    dialect = conn.dialect.name
    c = events.c
    statement = sa.select(
        *[iso_text(c.at, dialect) if name == "at" else c[name] for name in EVENT_COLUMNS]
    ).order_by(c.chain, c.seq)
    if where is not None:
        statement = statement.where(where)
    slow = SlowTimes(conn.dialect)
    for row in raw_rows(conn, statement):
        if row[AT].startswith(SLOW):
            row = (*row[:AT], slow(row[AT]), *row[AT + 1 :])
        yield row


class EventHasher:
    """``event_hash`` of an event row (``EVENT_COLUMNS``, ``at`` as ``iso`` text), fast.

    The JSON list ``canonical_json`` would make is joined from its pieces: strings through
    the json module's own string encoder, ints as ``int.__repr__`` and None as ``null``. The
    texts that repeat from event to event (chain, actor, role, community, type) are encoded
    once per combination. A value of any other type (only a hand-edited SQLite row can hold
    one) goes through ``event_hash`` itself.
    """

    def __init__(self) -> None:
        self._pieces: dict[tuple[Any, ...], tuple[str, str, str]] = {}

    def __call__(self, row: Sequence[Any]) -> str:
        chain, seq, at, actor, role, community, project, kind, data, prev = row[CHAIN:HASH]
        if type(seq) is not int or (project is not None and type(project) is not int):
            return _slow_hash(row)
        repeated = (chain, actor, role, community, kind)
        try:
            pieces = self._pieces.get(repeated)
            if pieces is None:
                pieces = self._pieces[repeated] = _pieces(chain, actor, role, community, kind)
            start, middle, end = pieces
            payload = (
                f"{start}{seq},{encode_basestring(at)}{middle}"
                f"{'null' if project is None else project}{end}"
                f"{encode_basestring(data)},{encode_basestring(prev)}]"
            )
        except TypeError:  # not a text where the event holds text
            return _slow_hash(row)
        return hashlib.sha256(payload.encode()).hexdigest()


def _pieces(
    chain: str, actor: str, role: str, community: str | None, kind: str
) -> tuple[str, str, str]:
    """The constant stretches of the hashed list around seq, at, project, data and prev."""
    place = "null" if community is None else encode_basestring(community)
    return (
        f"[{encode_basestring(chain)},",
        f",{encode_basestring(actor)},{encode_basestring(role)},{place},",
        f",{encode_basestring(kind)},",
    )


def _slow_hash(row: Sequence[Any]) -> str:
    at = row[AT]
    return event_hash(
        chain=row[CHAIN],
        seq=row[SEQ],
        at=datetime.fromisoformat(at) if isinstance(at, str) else at,
        actor=row[ACTOR],
        role=row[ROLE],
        community_id=row[COMMUNITY],
        project_id=row[PROJECT],
        type=row[TYPE],
        data=row[DATA],
        prev_hash=row[PREV],
    )
