"""The audit feed's ``type=`` and ``actor=`` filters read their own rows through an index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine import EventFilter
from engine.model import CLI
from engine.rules.workflow import WorkflowRegistry
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory


def test_the_events_table_has_an_index_for_each_exact_filter(z: Zizhi) -> None:
    with z.db.engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("events")}
    assert indexes["ix_events_type"] == ["type", "xid", "id"]
    assert indexes["ix_events_actor"] == ["actor", "xid", "id"]


def _statements_of(z: Zizhi, where: EventFilter) -> list[tuple[str, Any]]:
    """The SELECTs the engine sends for one page of the feed, with their parameters (on
    SQLite two: the rest of the cursor's xid, then the higher ones; see engine.store.feed)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement:
            seen.append((statement, parameters))

    sa.event.listen(z.db.engine, "before_cursor_execute", capture)
    try:
        engine.query_events(z, CLI, where, limit=100)
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", capture)
    assert seen
    return seen


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (EventFilter(type="token.revoked"), "ix_events_type"),
        (EventFilter(actor="token:ffffffffffff"), "ix_events_actor"),
        (EventFilter(type="token.revoked", since=datetime(2026, 1, 1, tzinfo=UTC)), None),
    ],
)
def test_sqlite_plans_an_exact_filter_through_its_index(
    databases: DatabaseFactory, registry: WorkflowRegistry, where: EventFilter, index: str | None
) -> None:
    # SQLite alone: PostgreSQL plans by table statistics (the index is checked above on both).
    z = Zizhi(databases.new("sqlite"), registry)
    for statement, parameters in _statements_of(z, where):
        with z.db.engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
        assert "ix_events_type" in plan or "ix_events_actor" in plan, plan
        if index is not None:
            assert index in plan, plan


def test_a_communitys_expenses_are_read_in_id_order_through_an_index(z: Zizhi) -> None:
    """What verify asks of each community (engine.store.facts): its expenses in id order."""
    with z.db.engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("expenses")}
        assert indexes["ix_expenses_community"] == ["community_id", "id"]
        if z.db.is_sqlite:  # PostgreSQL plans by table statistics
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT * FROM expenses WHERE community_id = ? ORDER BY id",
                    ("lihe",),
                )
            )
            assert "ix_expenses_community" in plan and "TEMP B-TREE" not in plan
