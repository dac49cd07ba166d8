"""The feed: every committed event exactly once, in an order that never changes.

Event ids come from a sequence, so on PostgreSQL a transaction can commit a lower id after a
higher one is already visible; a reader paging by id would page past it. The feed instead
orders events by ``(xid, id)`` — ``xid`` is the writing transaction's id
(``pg_current_xact_id()``, the column's default, a 64-bit counter that never wraps) — and
shows only events whose ``xid`` is below the *watermark*
``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction still running. Every
transaction below the watermark has finished, and any transaction that has not yet written
gets a higher id, so nothing can ever appear below the watermark again: the feed up to it
is final and only ever grows at its end. Writers take no new lock and issue no new
statement (the id is a column default); a long write transaction only holds back how far
the feed reaches, never what it shows.

On SQLite one transaction writes at a time (``BEGIN IMMEDIATE``) and rowids are handed out
in commit order, so ``xid`` is 0 and id order is commit order.

Events written before migration 0009 have ``xid`` 0: all committed, ordered by id.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import ValidationFailed
from engine.store.tables import events

FeedKey = tuple[int, int]  # (xid, id)
START: FeedKey = (-1, 0)

# Transaction ids are server-wide, so a transaction in another database on the same server
# would hold the feed back too, though it cannot write our events. The watermark is the
# lowest transaction running at the snapshot (``pg_snapshot_xip``; anything from
# ``pg_snapshot_xmax`` on counts as running) *unless* pg_stat_activity shows it running in
# another database — one that ended meanwhile, or one the role may not see, counts as ours.
# Below it, as below ``pg_snapshot_xmin``, every transaction that may write events is over.
_WATERMARK: sa.ColumnElement[int] = sa.literal_column(
    "(SELECT LEAST(pg_snapshot_xmax(s.snap)::text::bigint,"
    " (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x"
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a"
    "   WHERE a.datname <> current_database()"
    "   AND a.backend_xid::text::bigint = mod(x::text::bigint, 4294967296))))"
    " FROM (SELECT pg_current_snapshot() AS snap) AS s)"
)
_MAX = 2**63


def order() -> tuple[sa.Column[Any], sa.Column[Any]]:
    return events.c.xid, events.c.id


def visible(dialect: str) -> sa.ColumnElement[bool]:
    """Events whose place in the feed is final (all of them on SQLite)."""
    if dialect == "sqlite":
        return sa.true()
    return events.c.xid < _WATERMARK


def after(key: FeedKey) -> sa.ColumnElement[bool]:
    return sa.tuple_(events.c.xid, events.c.id) > sa.tuple_(
        sa.literal(key[0], sa.BigInteger), sa.literal(key[1], sa.BigInteger)
    )


def unindexed_at(dialect: str) -> sa.ColumnElement[Any]:
    """``events.at`` as a feed read filters on it: the same value, through an expression no
    index serves (SQLite's unary ``+``; adding a zero interval on PostgreSQL).

    A page reads in feed order, and the Merkle tree's blocks already bound the stretches
    that may hold its moments (``merkle.time_ranges``). Offered ``ix_events_at``, both
    databases sometimes read every event of the span through it and sorted them all for a
    page of 100 (a week of a million-event history: 40,000 rows, 25 ms on PostgreSQL), when
    their estimate of the rows after the cursor was off."""
    if dialect == "sqlite":
        return sa.literal_column("+events.at", events.c.at.type)
    return sa.literal_column("(events.at + interval '0')", events.c.at.type)


def rows_after(
    conn: Connection,
    query: sa.Select[Any],
    key: FeedKey,
    limit: int,
    *,
    final: bool = True,
    up_to: FeedKey | None = None,
) -> list[Any]:
    """Up to ``limit`` rows of ``query`` (a SELECT on ``events``, filtered) after ``key`` in
    feed order — and at most ``up_to``, if given; only those whose place is final unless
    ``final`` is False.

    PostgreSQL seeks its (xid, id) index with the row comparisons themselves. SQLite would
    seek by xid alone and scan the rest — every xid is 0 there, so a deep page would read the
    whole table — so it asks by parts, each an index range: the rest of ``key``'s xid by id,
    the xids in between, then ``up_to``'s xid up to its id."""
    if final:
        query = query.where(visible(conn.dialect.name))
    if conn.dialect.name != "sqlite":
        if up_to is not None:
            query = query.where(_at_most(up_to))
        return list(conn.execute(query.where(after(key)).order_by(*order()).limit(limit)))
    x, i = key
    e = events.c
    if up_to is not None and up_to[0] == x:
        parts = [query.where(e.xid == x, e.id > i, e.id <= up_to[1]).order_by(e.id)]
    elif up_to is not None:
        parts = [
            query.where(e.xid == x, e.id > i).order_by(e.id),
            query.where(e.xid > x, e.xid < up_to[0]).order_by(*order()),
            query.where(e.xid == up_to[0], e.id <= up_to[1]).order_by(e.id),
        ]
    else:
        parts = [
            query.where(e.xid == x, e.id > i).order_by(e.id),
            query.where(e.xid > x).order_by(*order()),
        ]
    rows: list[Any] = []
    for part in parts:
        if up_to is not None and up_to < key:
            break
        rows += conn.execute(part.limit(limit - len(rows)))
        if len(rows) >= limit:
            break
    return rows


def _at_most(key: FeedKey) -> sa.ColumnElement[bool]:
    return sa.tuple_(events.c.xid, events.c.id) <= sa.tuple_(
        sa.literal(key[0], sa.BigInteger), sa.literal(key[1], sa.BigInteger)
    )


# Every event type in the history, in order: one seek of ix_events_type per type (a loose
# index scan), so a few dozen seeks however long the history. min() and > compare under the
# column's own collation, so every type is met once whatever that collation is.
_TYPES_PRESENT = sa.text(
    "WITH RECURSIVE present(type) AS ("
    " SELECT min(type) FROM events"
    " UNION ALL"
    " SELECT (SELECT min(e.type) FROM events AS e WHERE e.type > present.type)"
    " FROM present WHERE present.type IS NOT NULL"
    ") SELECT type FROM present WHERE type IS NOT NULL"
)


def types_present(conn: Connection) -> list[str]:
    """The distinct event types the history holds (committed or not yet final)."""
    return list(conn.execute(_TYPES_PRESENT).scalars())


def key_of(row: Any) -> FeedKey:
    return int(row.xid), int(row.id)


def encode_cursor(key: FeedKey) -> str:
    raw = json.dumps({"feed": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> FeedKey:
    """The feed key after which the next page starts; a cursor is only ever a position, so
    whatever it says, the reader's scope and filters still decide what is shown."""
    if not cursor:
        return START
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["feed"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationFailed.fields({"cursor": "分页游标无效"}) from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(type(part) is int and 0 <= part < _MAX for part in value)
    ):
        raise ValidationFailed.fields({"cursor": "分页游标无效"})
    return value[0], value[1]
