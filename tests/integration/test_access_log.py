"""The access log's record: written after the read, in a transaction of its own."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

import engine
from engine.model import Principal, Role
from engine.store.tables import access_log
from engine.store.uow import Zizhi
from engine.usecases.audit import EventFilter
from tests.factories import World


def test_an_auditors_read_is_recorded_without_waiting_for_a_flush_on_postgresql(
    world: World, z: Zizhi, backend: str
) -> None:
    """On PostgreSQL the record's own transaction sets ``synchronous_commit = off`` for
    itself alone; every other transaction still waits for its flush. SQLite commits it as it
    commits everything."""
    community = world.community()
    auditor = Principal(id=f"token:auditor-{community}", name="审计", role=Role.auditor)
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(z.db.engine, "before_cursor_execute", capture)
    try:
        page = engine.query_events(z, auditor, EventFilter(community_id=community))
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", capture)
    inserts = [i for i, s in enumerate(seen) if s.startswith("INSERT INTO access_log")]
    assert len(inserts) == 1
    relaxed = [i for i, s in enumerate(seen) if "synchronous_commit" in s]
    if backend == "postgresql":
        assert relaxed == [inserts[0] - 1]  # in the record's transaction, just before it
        with z.db.write() as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar_one() == "on"
    else:
        assert relaxed == []
    with z.read() as conn:
        rows = conn.execute(sa.select(access_log).where(access_log.c.actor == auditor.id)).all()
    assert [(r.what, r.rows) for r in rows] == [("events", len(page.items))]
