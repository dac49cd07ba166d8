"""A reader paging the audit feed while writer processes commit sees every event exactly once.

Writer processes (``tests/reliability/writer.py``) keep committing in several communities
each; this process pages ``query_events`` with small pages the whole time, always from the
cursor it holds. At the end of what is there it keeps the cursor of the page it is on and
reads that page again later: the feed only grows at its end, so what it saw of that page
must come back first, unchanged. When ids were the order, a transaction on PostgreSQL
could commit a lower id after the reader had paged past a higher one, and the reader never
saw that event (on SQLite, one writer at a time, it could not happen).
"""

from __future__ import annotations

import sqlalchemy as sa

import engine
from engine.model import CLI
from engine.store.tables import events
from engine.store.uow import Zizhi
from tests.factories import World
from tests.reliability.test_consistent_reads import writers

WRITERS = 4
TARGET_EVENTS = 1500


class Reader:
    """Pages from a cursor; a short page is re-read from the same cursor next time."""

    def __init__(self, z: Zizhi, where: engine.EventFilter, limit: int) -> None:
        self.z, self.where, self.limit = z, where, limit
        self.cursor: str | None = None
        self.seen: list[int] = []
        self.tail: list[int] = []  # what the short page at ``cursor`` showed so far

    def step(self) -> bool:
        """Read one page; True if it was a short one (the reader is at the end)."""
        page = engine.query_events(self.z, CLI, self.where, limit=self.limit, cursor=self.cursor)
        ids = [e.id for e in page.items]
        if page.next_cursor is None and len(ids) < len(self.tail):
            # The end of the feed may briefly reach less far (a transaction in another
            # database that ended meanwhile counts as ours), never show other events.
            assert self.tail[: len(ids)] == ids, "a page the reader had read changed"
            return True
        assert ids[: len(self.tail)] == self.tail, "a page the reader had read changed"
        self.seen.extend(ids[len(self.tail) :])
        if page.next_cursor is None:
            self.tail = ids
            return True
        self.cursor, self.tail = page.next_cursor, []
        return False

    def drain(self) -> None:
        while not self.step():
            pass


def _count(z: Zizhi) -> int:
    with z.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def test_a_reader_paging_while_writers_commit_sees_every_event_once(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    communities = [world.community() for _ in range(WRITERS * 2)]
    groups = [communities[i::WRITERS] for i in range(WRITERS)]
    url = fresh_z.db.url.render_as_string(hide_password=False)
    everything = Reader(fresh_z, engine.EventFilter(), limit=3)
    one = Reader(fresh_z, engine.EventFilter(community_id=communities[0]), limit=2)
    with writers(url, groups) as reports:
        # By progress, not by time: page the whole while the writers commit.
        while _count(fresh_z) < TARGET_EVENTS:
            everything.step()
            one.step()
    assert all(not r["errors"] for r in reports), reports
    everything.drain()
    one.drain()

    with fresh_z.read() as conn:
        all_ids = [r.id for r in conn.execute(sa.select(events.c.id, events.c.community_id))]
        mine = {
            r.id
            for r in conn.execute(
                sa.select(events.c.id).where(events.c.community_id == communities[0])
            )
        }
    assert len(everything.seen) == len(set(everything.seen)), "an event was shown twice"
    missing = set(all_ids) - set(everything.seen)
    assert not missing, f"{len(missing)} committed events were never shown: {sorted(missing)[:10]}"
    assert len(everything.seen) == len(all_ids)
    assert len(one.seen) == len(set(one.seen)) and set(one.seen) == mine
    # The order is stable: reading the whole feed again gives the same sequence.
    exported = [e.id for e in engine.stream_events(fresh_z, CLI, engine.EventFilter(), batch=7)]
    assert exported == everything.seen
