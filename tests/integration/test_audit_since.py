"""A page ``since=`` a moment starts reading the feed where the Merkle tree's blocks say the
moment is reached, and still shows exactly the events at or after it, in feed order, even
when event times do not follow the feed's order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import engine
from engine import EventFilter
from engine.model import CLI
from engine.rules.workflow import WorkflowRegistry
from engine.store import feed, merkle
from engine.store.tables import events, merkle_blocks
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World

BASE = datetime(2026, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merkle, "BLOCK", 4)
    monkeypatch.setattr(merkle, "_HITS", 3)  # a page asks for few blocks, then reads on


def _grow(z: Zizhi, clock: Clock, minutes: list[int]) -> None:
    community = World(z).community()
    for minute in minutes:
        clock.now = BASE + timedelta(minutes=minute)
        engine.record_demand(z, None, community, {"content": "路灯坏了", "resident": "张三"})


def _expected(z: Zizhi, since: datetime) -> list[int]:
    with z.read() as conn:
        return list(
            conn.execute(
                sa.select(events.c.id)
                .where(events.c.at >= since, feed.visible(conn.dialect.name))
                .order_by(*feed.order())
            ).scalars()
        )


def _paged(z: Zizhi, since: datetime) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = engine.query_events(z, CLI, EventFilter(since=since), limit=7, cursor=cursor)
        ids += [e.id for e in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.usefixtures("small_blocks")
def test_since_shows_every_event_at_or_after_the_moment_though_times_jump_back_and_forth(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    rng = random.Random(3)
    _grow(z, clock, [i + rng.randint(-8, 8) for i in range(45)])
    engine.checkpoint(z)  # the tree and its blocks reach every event so far
    _grow(z, clock, [50, 20, 51])  # and some past the tree's end
    for minute in range(-12, 60, 3):
        since = BASE + timedelta(minutes=minute)
        expected = _expected(z, since)
        assert _paged(z, since) == expected, minute
        streamed = engine.stream_events(z, CLI, EventFilter(since=since), batch=5)
        assert [e.id for e in streamed] == expected, minute


def _feed_parameters(z: Zizhi, since: datetime) -> list[Any]:
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement and "events.at >=" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            seen.extend(values)

    sa.event.listen(z.db.engine, "before_cursor_execute", capture)
    try:
        engine.query_events(z, CLI, EventFilter(since=since), limit=10)
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", capture)
    return seen


@pytest.mark.usefixtures("small_blocks")
def test_a_since_page_reads_only_the_blocks_that_reach_the_moment(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    # One event early in the feed stamped late (a server's clock ahead): its block is read,
    # the others before the moment are not.
    _grow(z, clock, [500, *range(1, 40)])
    engine.checkpoint(z)
    since = BASE + timedelta(minutes=30)
    with z.read() as conn:
        first = conn.execute(
            sa.select(sa.func.min(events.c.id)).where(
                events.c.at >= since, events.c.at < since + timedelta(minutes=60)
            )
        ).scalar_one()
        stretches = merkle.since_ranges(conn, since)
    assert len(stretches) == 2, stretches  # the stray event's block, then the rest
    (_, stray_end), (resume, end) = stretches
    assert end is None
    # Reading resumes at most a block before the first event that late.
    assert first - merkle.BLOCK <= resume[1] < first
    assert resume[1] in _feed_parameters(z, since)
    assert _paged(z, since) == _expected(z, since)


def test_migration_0010_fills_the_blocks_of_a_tree_built_before_it(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    rng = random.Random(4)
    _grow(z, clock, [i // 10 + rng.randint(-30, 30) for i in range(2 * merkle.BLOCK + 50)])
    engine.checkpoint(z)
    blocks = sa.select(merkle_blocks).order_by(merkle_blocks.c.block)
    with z.read() as conn:
        kept = conn.execute(blocks).all()
    assert len(kept) == 2
    config = Config()
    config.set_main_option("script_location", str(Path(engine.__file__).parent / "migrations"))
    with z.db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")  # as if the tree had been built before 0010
        conn.commit()
    z.db.migrate()
    with z.read() as conn:
        assert conn.execute(blocks).all() == kept
