"""A page ``since=`` or ``until=`` a moment reads only the stretches of the feed the Merkle
tree's blocks say reach into its span of time, from the cursor's block on, and still shows
exactly the events of that span, in feed order, even when event times do not follow the
feed's order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import partial
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
from engine.store.tables import events, merkle_blocks, merkle_leaves
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World, paged_event_ids, settled

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


def _expected(z: Zizhi, since: datetime | None, until: datetime | None = None) -> list[int]:
    """Every event of the span, in feed order: what the feed shows once it has caught up
    (each test's own writes have all ended when it asks)."""
    query = sa.select(events.c.id).order_by(*feed.order())
    if since is not None:
        query = query.where(events.c.at >= since)
    if until is not None:
        query = query.where(events.c.at < until)
    with z.read() as conn:
        return list(conn.execute(query).scalars())


def _paged(z: Zizhi, since: datetime | None, until: datetime | None = None) -> list[int]:
    return paged_event_ids(z, EventFilter(since=since, until=until), limit=7)


def _streamed(z: Zizhi, where: EventFilter, batch: int) -> list[int]:
    return [e.id for e in engine.stream_events(z, CLI, where, batch=batch)]


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
        settled(partial(_paged, z, since), expected, minute)
        settled(partial(_streamed, z, EventFilter(since=since), 5), expected, minute)


def _feed_parameters(z: Zizhi, where: EventFilter, cursor: str | None = None) -> list[Any]:
    """The parameters of the feed reads one page sends."""
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement and "events.at" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            seen.extend(values)

    sa.event.listen(z.db.engine, "before_cursor_execute", capture)
    try:
        engine.query_events(z, CLI, where, limit=10, cursor=cursor)
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", capture)
    return seen


def _position(z: Zizhi, key: feed.FeedKey) -> int:
    with z.read() as conn:
        return int(
            conn.execute(
                sa.select(merkle_leaves.c.position).where(merkle_leaves.c.event_id == key[1])
            ).scalar_one()
        )


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
        stretches = merkle.time_ranges(conn, since, None)
    assert len(stretches) == 2, stretches  # the stray event's block, then the rest
    (_, stray_end), (resume, end) = stretches
    assert end is None
    # Reading resumes at most a block before the first event that late.
    assert first - merkle.BLOCK <= resume[1] < first
    assert resume[1] in _feed_parameters(z, EventFilter(since=since))
    settled(lambda: _paged(z, since), _expected(z, since), since)


@pytest.mark.usefixtures("small_blocks")
def test_until_and_a_span_show_exactly_their_events_though_times_jump_back_and_forth(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    rng = random.Random(5)
    _grow(z, clock, [i + rng.randint(-8, 8) for i in range(45)])
    engine.checkpoint(z)
    _grow(z, clock, [50, 20, -3])  # and some past the tree's end
    for minute in range(-12, 60, 3):
        moment = BASE + timedelta(minutes=minute)
        for since, until in ((None, moment), (moment, moment + timedelta(minutes=10))):
            expected = _expected(z, since, until)
            settled(partial(_paged, z, since, until), expected, (minute, since))
            where = EventFilter(since=since, until=until)
            settled(partial(_streamed, z, where, 5), expected, (minute, since))


@pytest.mark.usefixtures("small_blocks")
def test_an_until_page_reads_only_the_blocks_before_the_moment(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    # One event late in the feed stamped early (a server's clock behind): its block is read,
    # the blocks after the moment around it are not.
    _grow(z, clock, [*range(1, 40), -500, 41, 42, 43])
    engine.checkpoint(z)
    until = BASE + timedelta(minutes=6)
    last = _expected(z, None, until)[-2]  # the last event of minute 5 (the stray comes after)
    with z.read() as conn:
        stretches = merkle.time_ranges(conn, None, until)
        tree_end = merkle.size(conn)
    assert len(stretches) == 2, stretches  # the blocks up to the moment, then the stray's on
    (start, stop), (stray_block, end) = stretches
    assert start == feed.START and end is None
    assert stop is not None
    assert _position(z, stop) // merkle.BLOCK == _position(z, (0, last)) // merkle.BLOCK
    assert _position(z, stray_block) == tree_end - tree_end % merkle.BLOCK - merkle.BLOCK - 1
    # The last page, from a cursor past every event before the moment but the stray, reads
    # on from the stray's block, not from the cursor through the blocks in between.
    cursor = feed.encode_cursor(_keys(z)[5 * merkle.BLOCK])
    assert stray_block[1] in _feed_parameters(z, EventFilter(until=until), cursor)
    settled(lambda: _paged(z, None, until), _expected(z, None, until), until)


@pytest.mark.usefixtures("small_blocks")
def test_a_page_from_a_cursor_asks_only_for_blocks_from_the_cursors_on(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    _grow(z, clock, list(range(1, 40)))
    engine.checkpoint(z)
    _grow(z, clock, [40, 41])
    keys = _keys(z)
    early = BASE - timedelta(days=1)  # every block reaches it
    with z.read() as conn:
        tree_end = merkle.size(conn)
        from_block_5 = merkle.time_ranges(conn, early, None, keys[5 * merkle.BLOCK + 1])
        past_the_tree = merkle.time_ranges(conn, early, None, keys[-1])
    assert from_block_5 == [(keys[5 * merkle.BLOCK - 1], None)]
    last_complete = tree_end - tree_end % merkle.BLOCK
    assert past_the_tree == [(keys[last_complete - 1], None)]


@pytest.mark.parametrize(
    ("since", "until"), [(300, 303), (None, 3), (597, None), (200, 500)], ids=str
)
def test_a_page_in_time_reads_in_feed_order_never_through_the_time_index(
    backend: str,
    databases: DatabaseFactory,
    registry: WorkflowRegistry,
    since: int | None,
    until: int | None,
) -> None:
    # Offered ix_events_at, both databases sometimes read every event of the span through
    # it and sorted them for a page: a week of a million events, 40,000 rows for 100.
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    _grow(z, clock, list(range(600)))
    engine.checkpoint(z)
    with z.db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    where = EventFilter(
        since=None if since is None else BASE + timedelta(minutes=since),
        until=None if until is None else BASE + timedelta(minutes=until),
    )
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement and "at" in statement:
            seen.append((statement, parameters))

    sa.event.listen(z.db.engine, "before_cursor_execute", capture)
    try:
        page = engine.query_events(z, CLI, where, limit=100)
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", capture)
    assert page.items
    explain = "EXPLAIN QUERY PLAN " if z.db.is_sqlite else "EXPLAIN "
    with z.db.engine.connect() as conn:
        for statement, parameters in seen:
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(explain + statement, parameters)
            )
            assert "ix_events_at" not in plan, plan


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("typed", "since", "until"),
    [("project.*", 3, 9), ("ledger.*", 4, None), ("Demand.*", None, 7), ("ledger.reserved", 2, 8)],
)
def test_a_type_filter_within_a_span_pages_exactly_its_events(
    backend: str,
    databases: DatabaseFactory,
    registry: WorkflowRegistry,
    typed: str,
    since: int | None,
    until: int | None,
) -> None:
    clock = Clock()
    z = Zizhi(databases.new(backend), registry, clock=clock)
    world = World(z)
    community = world.community()
    rng = random.Random(6)
    for i in range(10):
        clock.now = BASE + timedelta(minutes=i + rng.choice([-2, 0, 0, 1]))
        world.advance(world.project(community), "implementation", budget_fen=10_000)
        if i == 5:
            engine.checkpoint(z)  # a tree that covers half the history
    lower = None if since is None else BASE + timedelta(minutes=since)
    upper = None if until is None else BASE + timedelta(minutes=until)
    prefix = typed.lower().removesuffix("*")
    with z.read() as conn:
        every = conn.execute(
            sa.select(events.c.id, events.c.type, events.c.at).order_by(*feed.order())
        ).all()
    expected = [
        row.id
        for row in every
        if (row.type.startswith(prefix) if typed.endswith("*") else row.type == prefix)
        and (lower is None or row.at >= lower)
        and (upper is None or row.at < upper)
    ]
    assert len(expected) > 3  # several pages
    where = EventFilter(type=typed, since=lower, until=upper)
    settled(lambda: paged_event_ids(z, where, limit=3), expected, where)
    settled(partial(_streamed, z, where, 2), expected, where)


def _keys(z: Zizhi) -> list[feed.FeedKey]:
    """Every event's feed key, in feed order."""
    with z.read() as conn:
        rows = conn.execute(sa.select(events.c.xid, events.c.id).order_by(*feed.order()))
        return [feed.key_of(row) for row in rows]


def test_migrations_0010_and_0013_fill_the_blocks_of_a_tree_built_before_them(
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
    leaves = merkle_leaves.join(events, events.c.id == merkle_leaves.c.event_id)
    for block in kept:  # each block's earliest and latest times, as its events hold them
        with z.read() as conn:
            earliest, latest = conn.execute(
                sa.select(sa.func.min(events.c.at), sa.func.max(events.c.at))
                .select_from(leaves)
                .where(merkle_leaves.c.position // merkle.BLOCK == block.block)
            ).one()
        assert (block.min_at, block.max_at) == (earliest, latest)
