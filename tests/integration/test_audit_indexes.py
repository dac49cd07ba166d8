"""The audit feed's ``type=`` and ``actor=`` filters read their own rows through an index; a
type prefix reads each of its types that way, and is compared as people type it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine import EventFilter
from engine.model import CLI
from engine.rules.workflow import WorkflowRegistry
from engine.store import feed
from engine.store.tables import events
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World, paged_event_ids, settled


def test_the_events_table_has_an_index_for_each_exact_filter(z: Zizhi) -> None:
    with z.db.engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("events")}
    assert indexes["ix_events_type"] == ["type", "xid", "id"]
    assert indexes["ix_events_actor"] == ["actor", "xid", "id"]
    assert indexes["ix_events_project"] == ["project_id", "xid", "id"]


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


def _sqlite_plan(z: Zizhi, statement: str, parameters: Any) -> str:
    with z.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return " ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (EventFilter(type="token.revoked"), "ix_events_type"),
        (EventFilter(actor="token:ffffffffffff"), "ix_events_actor"),
        # With (project_id, id) SQLite walked the feed's own index from the cursor instead.
        (EventFilter(project_id=1), "ix_events_project"),
        (EventFilter(type="token.revoked", since=datetime(2026, 1, 1, tzinfo=UTC)), None),
    ],
)
def test_sqlite_plans_an_exact_filter_through_its_index(
    databases: DatabaseFactory, registry: WorkflowRegistry, where: EventFilter, index: str | None
) -> None:
    # SQLite alone: PostgreSQL plans by table statistics (the index is checked above on both).
    z = Zizhi(databases.new("sqlite"), registry)
    for statement, parameters in _statements_of(z, where):
        plan = _sqlite_plan(z, statement, parameters)
        assert any(f"ix_events_{name}" in plan for name in ("type", "actor", "project")), plan
        if index is not None:
            assert index in plan, plan


def _history_of_several_types(z: Zizhi) -> None:
    world = World(z)
    community = world.community()
    for budget_fen in (100_000, 200_000, 300_000):
        world.advance(world.project(community), "implementation", budget_fen=budget_fen)


def test_sqlite_reads_a_type_prefix_through_the_type_index_one_type_at_a_time(
    databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    # Read as one LIKE condition, a prefix walked the feed in order and tested every row:
    # a prefix few events match read the whole feed after the cursor (150 ms a page at a
    # million events).
    z = Zizhi(databases.new("sqlite"), registry)
    _history_of_several_types(z)
    statements = _statements_of(z, EventFilter(type="project.*"))
    assert len(statements) > 2  # the types present, then each project.* type's own run
    for statement, parameters in statements:
        plan = _sqlite_plan(z, statement, parameters)
        assert "ix_events_type" in plan, plan
        assert not re.search(r"SCAN (events|e)\b", plan), plan  # no walk of the table


@pytest.mark.parametrize(
    ("typed", "prefix"),
    [
        ("ledger.*", "ledger."),
        ("\u3000Ｌｅｄｇｅｒ．＊ ", "ledger."),  # full-width, ideographic and plain spaces
        ("PROJECT.*", "project."),
        ("proj\u200bect.*", "project."),  # a zero-width space pasted in
        ("Project.Transitioned", "project.transitioned"),  # an exact type, mixed case
        ("nothing.*", None),
    ],
)
def test_a_type_filter_pages_exactly_its_events_in_feed_order_however_typed(
    backend: str,
    databases: DatabaseFactory,
    registry: WorkflowRegistry,
    typed: str,
    prefix: str | None,
) -> None:
    z = Zizhi(databases.new(backend), registry)
    _history_of_several_types(z)
    with z.read() as conn:
        every = conn.execute(sa.select(events.c.id, events.c.type).order_by(*feed.order())).all()
    expected = [row.id for row in every if prefix is not None and row.type.startswith(prefix)]
    assert len(expected) != 1  # several, or (for nothing.*) none

    where = EventFilter(type=typed)
    settled(partial(paged_event_ids, z, where, 2), expected, typed)
    settled(lambda: [e.id for e in engine.stream_events(z, CLI, where, batch=3)], expected, typed)


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
