"""``verify_tree``: the Merkle tree's stored rows rebuilt from the events and compared.

The tree's rows are what proofs, checkpoints and time-filtered audit pages are read from
(``engine.store.merkle``); each test damages one of them the way a careless hand or a bad
restore could — a changed hash, a row gone, a row too many, two leaves swapped, a block's
times moved — and ``verify_tree`` must name that row, where ``zizhi verify`` and the
checkpoint check still pass. The history spans more than two complete blocks of leaves
and goes on past the tree's end, so the partial block and the events not yet in the tree
are covered too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import engine
from api.app import create_app
from engine.errors import Forbidden
from engine.model import CLI
from engine.store import feed
from engine.store.merkle import BLOCK
from engine.store.tables import events, merkle_blocks, merkle_leaves, merkle_nodes, merkle_state
from engine.store.uow import Zizhi
from tests.api.client import Api
from tests.api.web_client import browser, sign_in, user
from tests.e2e.server import cli
from tests.factories import World, new_id


def _grow(z: Zizhi, world: World, project: engine.ProjectView, events: int) -> None:
    committee = world.committee(project.community_id)
    for i in range(events):
        engine.add_to_project(
            z, committee, project.id, {"content": f"楼道灯不亮　{i}", "resident": "王老伯"}
        )


@pytest.fixture
def grown(fresh_z: Zizhi) -> int:
    """A history of two complete blocks and a part, all in the tree, and a few events past
    it; the tree's size."""
    world = World(fresh_z)
    project = world.project(world.community())
    _grow(fresh_z, world, project, 2 * BLOCK + 40)
    size = engine.checkpoint(fresh_z).tree_size  # extends the tree to the whole feed
    assert 2 * BLOCK < size < 3 * BLOCK
    _grow(fresh_z, world, project, 5)  # not in the tree until the next checkpoint
    return size


def _unguard(z: Zizhi) -> None:
    """Lift the append-only triggers of the tree's tables, as someone with the database's
    owner rights could."""
    with z.db.write() as conn:
        for table in ("merkle_leaves", "merkle_nodes", "merkle_blocks"):
            if z.db.is_sqlite:
                conn.execute(sa.text(f"DROP TRIGGER {table}_no_update"))
                conn.execute(sa.text(f"DROP TRIGGER {table}_no_delete"))
            else:
                conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.commit()


def test_an_intact_tree_verifies(fresh_z: Zizhi, grown: int) -> None:
    report = engine.verify_tree(fresh_z, CLI)
    assert report.ok and report.first_bad is None
    assert report.leaves == grown  # the events past the tree's end are not leaves yet
    engine.checkpoint(fresh_z)  # the tree takes them in
    assert engine.verify_tree(fresh_z, CLI).leaves == grown + 5


def test_an_empty_tree_verifies(fresh_z: Zizhi) -> None:
    report = engine.verify_tree(fresh_z, CLI)
    assert (report.ok, report.leaves) == (True, 0)


Damage = Callable[[sa.Connection, int], Any]

DAMAGES: dict[str, tuple[Damage, str, str, str]] = {
    # name: (damage, table, row, words in the reason)
    "node hash changed": (
        lambda conn, size: conn.execute(
            sa.update(merkle_nodes)
            .where(merkle_nodes.c.level == 2, merkle_nodes.c.idx == 1)
            .values(hash="0" * 64)
        ),
        "merkle_nodes",
        "level 2, idx 1",
        "不符",
    ),
    "node deleted": (
        lambda conn, size: conn.execute(
            sa.delete(merkle_nodes).where(merkle_nodes.c.level == 0, merkle_nodes.c.idx == 300)
        ),
        "merkle_nodes",
        "level 0, idx 300",
        "缺少",
    ),
    "node too many": (
        lambda conn, size: conn.execute(
            sa.insert(merkle_nodes).values(level=1, idx=size // 2 + 3, hash="a" * 64)
        ),
        "merkle_nodes",
        "level 1, idx {half}",
        "多出",
    ),
    "level that cannot be": (
        lambda conn, size: conn.execute(
            sa.insert(merkle_nodes).values(level=40, idx=0, hash="b" * 64)
        ),
        "merkle_nodes",
        "level 40",
        "多出",
    ),
    "leaves swapped": (
        lambda conn, size: _swap_leaves(conn, 10, 11),
        "merkle_leaves",
        "position 10",
        "应为事件",
    ),
    "leaf deleted": (
        lambda conn, size: conn.execute(
            sa.delete(merkle_leaves).where(merkle_leaves.c.position == size - 1)
        ),
        "merkle_leaves",
        "position {last}",
        "缺少",
    ),
    "leaf too many": (
        lambda conn, size: conn.execute(
            sa.insert(merkle_leaves).values(position=size + 7, event_id=10**9)
        ),
        "merkle_leaves",
        "position {size_plus_7}",
        "多出",
    ),
    "block moved in time": (
        lambda conn, size: conn.execute(
            sa.update(merkle_blocks)
            .where(merkle_blocks.c.block == 1)
            .values(max_at=merkle_blocks.c.min_at)
        ),
        "merkle_blocks",
        "block 1",
        "漏掉事件",
    ),
    "block deleted": (
        lambda conn, size: conn.execute(sa.delete(merkle_blocks).where(merkle_blocks.c.block == 0)),
        "merkle_blocks",
        "block 0",
        "缺少",
    ),
    "block not yet complete": (
        lambda conn, size: _copy_block(conn, 0, size // BLOCK),
        "merkle_blocks",
        "block 2",
        "多出",
    ),
    "size beyond the feed": (
        lambda conn, size: conn.execute(sa.update(merkle_state).values(size=size + 1000)),
        "merkle_state",
        "size",
        "只有",
    ),
}


def _swap_leaves(conn: sa.Connection, a: int, b: int) -> None:
    ids = dict(
        conn.execute(
            sa.select(merkle_leaves.c.position, merkle_leaves.c.event_id).where(
                merkle_leaves.c.position.in_([a, b])
            )
        ).all()
    )
    leaves = merkle_leaves.c
    conn.execute(sa.update(merkle_leaves).where(leaves.position == a).values(event_id=-1))
    conn.execute(sa.update(merkle_leaves).where(leaves.position == b).values(event_id=ids[a]))
    conn.execute(sa.update(merkle_leaves).where(leaves.position == a).values(event_id=ids[b]))


def _copy_block(conn: sa.Connection, source: int, block: int) -> None:
    row = conn.execute(sa.select(merkle_blocks).where(merkle_blocks.c.block == source)).one()
    conn.execute(sa.insert(merkle_blocks).values(block=block, min_at=row.min_at, max_at=row.max_at))


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_kind_of_damage_is_named(fresh_z: Zizhi, grown: int, damage: str) -> None:
    assert engine.verify_tree(fresh_z, CLI).ok
    kept = engine.checkpoint(fresh_z).as_dict()
    _unguard(fresh_z)
    do, table, row, words = DAMAGES[damage]
    with fresh_z.db.write() as conn:
        do(conn, grown + 5)  # the tree's size since the checkpoint above
        conn.commit()
    # What the history and its checkpoint checks see: nothing wrong.
    assert engine.verify(fresh_z, CLI).ok
    if table != "merkle_state":
        assert engine.verify_checkpoint(fresh_z, CLI, kept).ok
    report = engine.verify_tree(fresh_z, CLI)
    size = grown + 5
    expected_row = row.format(half=size // 2 + 3, last=size - 1, size_plus_7=size + 7)
    assert not report.ok
    assert report.first_bad is not None
    assert (report.first_bad["table"], report.first_bad["row"]) == (table, expected_row)
    assert words in report.first_bad["reason"]


def test_a_wrong_block_makes_time_filtered_pages_skip_events(fresh_z: Zizhi, grown: int) -> None:
    """Why blocks are checked: a block whose times were moved hides its events from a
    ``since=`` page, with nothing else to show for it."""
    with fresh_z.read() as conn:
        block = conn.execute(sa.select(merkle_blocks).where(merkle_blocks.c.block == 0)).one()
    since = block.max_at  # the block's last moment: at least one of its events is on or after it
    before = engine.query_events(fresh_z, CLI, engine.EventFilter(since=since), limit=500)
    _unguard(fresh_z)
    with fresh_z.db.write() as conn:
        conn.execute(
            sa.update(merkle_blocks)
            .where(merkle_blocks.c.block == 0)
            .values(
                max_at=block.max_at - timedelta(days=1), min_at=block.min_at - timedelta(days=1)
            )
        )
        conn.commit()
    after = engine.query_events(fresh_z, CLI, engine.EventFilter(since=since), limit=500)
    assert len(after.items) < len(before.items)
    report = engine.verify_tree(fresh_z, CLI)
    assert report.first_bad is not None and report.first_bad["row"] == "block 0"


def test_a_feed_that_ends_early_for_a_moment_is_not_damage(
    fresh_z: Zizhi, grown: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the feed's watermark can stand below the tree's end for a moment (a
    transaction of another database that just ended counts as possibly ours); the tree's
    leaves are final for good, so the check reads them whatever the watermark says."""
    with fresh_z.read() as conn:
        tenth = conn.execute(
            sa.select(events.c.xid, events.c.id).order_by(*feed.order()).offset(9).limit(1)
        ).one()
    held_back = sa.tuple_(events.c.xid, events.c.id) < sa.tuple_(
        sa.literal(tenth.xid, sa.BigInteger), sa.literal(tenth.id, sa.BigInteger)
    )
    monkeypatch.setattr(feed, "visible", lambda dialect: held_back)
    with fresh_z.read() as conn:  # the feed now ends after nine events
        assert len(feed.rows_after(conn, sa.select(events.c.id), feed.START, 100)) == 9
    report = engine.verify_tree(fresh_z, CLI)
    assert report.ok, report.first_bad
    assert report.leaves == grown


def test_only_the_whole_district_may_verify_the_tree(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    community = world.community()
    auditor = world.auditor()
    assert engine.verify_tree(fresh_z, auditor).ok
    recorded = engine.access_records(fresh_z, CLI, actor=auditor.id).items
    assert [(r.what, r.query) for r in recorded] == [("verify_tree", {"ok": True})]
    scoped = engine.Principal(
        id="token:scoped", name="审计", role=engine.Role.auditor, communities=frozenset({community})
    )
    for who in (
        scoped,
        world.committee(community),
        world.street_officer(world.street_of(community)),
    ):
        with pytest.raises(Forbidden):
            engine.verify_tree(fresh_z, who)


def test_verifying_while_others_write_sees_one_state(fresh_z: Zizhi, grown: int) -> None:
    """Writers append events and extend the tree (a checkpoint each round) the whole time;
    every check sees one snapshot, so every one passes and the sizes only grow."""
    world = World(fresh_z)
    project = world.project(world.community())
    stop = threading.Event()
    failures: list[BaseException] = []
    rounds: list[int] = []  # one item per round a writer finished: events and a checkpoint

    def write() -> None:
        try:
            while not stop.is_set():
                _grow(fresh_z, world, project, 7)
                engine.checkpoint(fresh_z)
                rounds.append(1)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for w in writers:
        w.start()
    sizes: list[int] = []
    try:
        # At least six checks, and on until the writers have grown the tree a few times
        # (however slowly they run: the count of checks, not time, is what bounds this).
        while (len(sizes) < 6 or len(rounds) < 4) and len(sizes) < 10_000 and not failures:
            report = engine.verify_tree(fresh_z, CLI)
            assert report.ok, report.first_bad
            sizes.append(report.leaves)
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert not failures, failures
    settled = engine.verify_tree(fresh_z, CLI)  # the writers are done: every round is in
    assert settled.ok and settled.leaves > grown
    sizes.append(settled.leaves)
    assert sizes == sorted(sizes)


def test_the_command_line_and_the_api_report_the_tree(fresh_z: Zizhi, grown: int) -> None:
    url = fresh_z.db.url.render_as_string(hide_password=False)
    intact = cli(url, "verify", "--tree")
    assert intact.returncode == 0, intact.stderr
    assert f"默克尔树校验通过：{grown} 片叶子" in intact.stdout
    with TestClient(create_app(fresh_z)) as client:
        api = Api(client, fresh_z)
        auditor = api.token("auditor")
        answer = api.ok(api.get("/api/v1/audit/verify-tree", auditor))
        assert answer == {"ok": True, "leaves": grown, "first_bad": None}
        community = api.community()
        committee = api.token("committee", communities=[community])
        assert api.get("/api/v1/audit/verify-tree", committee).status_code == 403
        _unguard(fresh_z)
        with fresh_z.db.write() as conn:
            conn.execute(
                sa.update(merkle_nodes)
                .where(merkle_nodes.c.level == 0, merkle_nodes.c.idx == 3)
                .values(hash="f" * 64)
            )
            conn.commit()
        bad = api.ok(api.get("/api/v1/audit/verify-tree", auditor))
        assert bad["ok"] is False and bad["first_bad"]["row"] == "level 0, idx 3"
    damaged = cli(url, "verify", "--tree")
    assert damaged.returncode == 1
    assert "默克尔树校验失败：merkle_nodes level 0, idx 3" in damaged.stdout
    assert "Traceback" not in damaged.stderr


def test_the_web_pages_offer_and_show_the_tree_check(fresh_z: Zizhi, grown: int) -> None:
    scoped_community = World(fresh_z).community()
    with browser(fresh_z) as client:
        sign_in(client, user(fresh_z, new_id("a"), "auditor"))
        verify = client.get("/audit/verify")
        assert verify.status_code == 200 and 'href="/audit/verify-tree"' in verify.text
        page = client.get("/audit/verify-tree")
        assert page.status_code == 200
        assert f"校验通过：共 {grown} 片叶子" in page.text
        _unguard(fresh_z)
        with fresh_z.db.write() as conn:
            conn.execute(sa.delete(merkle_blocks).where(merkle_blocks.c.block == 1))
            conn.commit()
        damaged = client.get("/audit/verify-tree")
        assert damaged.status_code == 200
        assert "校验失败：merkle_blocks block 1：缺少时间块" in damaged.text
    with browser(fresh_z) as scoped:
        sign_in(scoped, user(fresh_z, new_id("a"), "auditor", communities=[scoped_community]))
        assert 'href="/audit/verify-tree"' not in scoped.get("/audit/verify").text
        refused = scoped.get("/audit/verify-tree")
        assert refused.status_code == 403 and "Traceback" not in refused.text
