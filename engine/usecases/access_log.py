"""Who looked at what: auditors' and street officers' queries of the history, statements and
exports, each recorded with the query and how many rows it answered.

The record is written in a short transaction of its own after the read, into its own
append-only table (never a hash chain), so reading never holds a chain head and never slows
the writers of a community. Admins and unrestricted auditors read the whole log; an auditor
scoped to communities or streets reads its own records.

On PostgreSQL that transaction commits without waiting for its WAL flush
(``synchronous_commit = off``, for it alone): a read then costs no disk flush of its own,
and the record reaches the disk with the next flush (within ``wal_writer_delay``, 200 ms by
default). A crash of the database server in that moment can lose the last records — never
half of one, never out of order, and never a change: every change commits durably as
before. SQLite's single writer commits the record as it commits everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.model import Principal, Role
from engine.store.history import canonical_json
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.tables import access_log
from engine.store.uow import Zizhi

RECORDED = frozenset({Role.auditor, Role.street})
_INSERT = sa.insert(access_log)
_NO_FLUSH_WAIT = sa.text("SET LOCAL synchronous_commit = off")


@dataclass(frozen=True, slots=True)
class AccessView:
    id: int
    at: datetime
    actor: str
    role: str
    what: str  # events | export | project_history | statement | verify | verify_tree
    query: dict[str, Any]
    rows: int


def record_access(
    z: Zizhi, principal: Principal, what: str, query: Mapping[str, Any], rows: int
) -> None:
    """Record one query by an auditor or a street officer (others' reads are not logged)."""
    if principal.role not in RECORDED:
        return
    asked = {k: _plain(v) for k, v in query.items() if v is not None}
    with z.db.write() as conn:
        if not z.db.is_sqlite:
            conn.execute(_NO_FLUSH_WAIT)
        conn.execute(
            _INSERT,
            {
                "at": z.clock(),
                "actor": principal.id,
                "role": principal.role.value,
                "what": what,
                "query": canonical_json(asked),
                "rows": rows,
            },
        )
        conn.commit()


def access_records(
    z: Zizhi,
    principal: Principal,
    *,
    actor: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[AccessView]:
    """One page of the access log, oldest first (admins and auditors)."""
    principal.require(Role.admin, Role.auditor)
    check_limit(limit)
    c = access_log.c
    query = sa.select(access_log).where(c.id > decode_cursor(cursor, 0))
    if not principal.unrestricted:
        query = query.where(c.actor == principal.id)
    if actor is not None:
        query = query.where(c.actor == actor)
    with z.read() as conn:
        rows = conn.execute(query.order_by(c.id).limit(limit + 1)).all()
    views = [
        AccessView(
            id=r.id,
            at=r.at,
            actor=r.actor,
            role=r.role,
            what=r.what,
            query=json.loads(r.query),
            rows=r.rows,
        )
        for r in rows
    ]
    return page_of(views, limit, lambda v: v.id)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
