"""The history is append-only, chained per community, and verification finds any tampering."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

import engine
from engine.model import CLI
from engine.store.history import SYSTEM_CHAIN, genesis_hash
from engine.store.tables import chain_heads, events
from engine.store.uow import Zizhi
from tests.factories import World

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _some_project_history(z: Zizhi) -> tuple[str, int]:
    world = World(z)
    community = world.community()
    project = world.advance(world.project(community), "implementation", budget_fen=500_000)
    return community, project.id


def _drop_append_only_guard(z: Zizhi) -> None:
    """What someone with full control of the database could do first."""
    with z.db.write() as conn:
        if z.db.is_sqlite:
            conn.execute(sa.text("DROP TRIGGER events_no_update"))
            conn.execute(sa.text("DROP TRIGGER events_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER USER"))
        conn.commit()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}' WHERE id = (SELECT MIN(id) FROM events)",
        "DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)",
        "UPDATE ledger_entries SET amount_fen = 1 WHERE id = (SELECT MIN(id) FROM ledger_entries)",
        "DELETE FROM ledger_entries",
    ],
)
def test_the_database_refuses_to_change_or_remove_history(
    z: Zizhi, world: World, statement: str
) -> None:
    world.advance(world.project(world.community()), "implementation")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), z.db.write() as conn:
        conn.execute(sa.text(statement))


def test_postgresql_also_refuses_to_truncate_history(z: Zizhi, world: World, backend: str) -> None:
    world.community()  # at least one event, whatever ran before on this database
    statement = "TRUNCATE events" if backend == "postgresql" else "DELETE FROM events"
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), z.db.write() as conn:
        conn.execute(sa.text(statement))


def test_every_community_has_its_own_chain_starting_at_its_creation(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    first, second = world.community(), world.community()
    world.project(first)
    with fresh_z.read() as conn:
        rows = conn.execute(
            sa.select(events.c.chain, events.c.seq, events.c.type, events.c.prev_hash).order_by(
                events.c.id
            )
        ).all()
        heads = dict(conn.execute(sa.select(chain_heads.c.chain, chain_heads.c.seq)).all())
    assert [(r.chain, r.seq, r.type) for r in rows] == [
        (first, 1, "community.created"),
        (second, 1, "community.created"),
        (first, 2, "project.created"),
    ]
    assert rows[0].prev_hash == genesis_hash(first)
    assert heads == {SYSTEM_CHAIN: 0, first: 2, second: 1}


def test_a_clean_history_verifies(fresh_z: Zizhi) -> None:
    _some_project_history(fresh_z)
    report = engine.verify(fresh_z, CLI)
    assert (report.ok, report.first_bad) == (True, None)
    assert report.checked == 9  # created, project, demand, 4 steps, allocate, reserve


def test_verify_finds_an_event_edited_in_the_database(fresh_z: Zizhi) -> None:
    community, project_id = _some_project_history(fresh_z)
    _drop_append_only_guard(fresh_z)
    with fresh_z.db.write() as conn:
        target = conn.execute(
            sa.select(events.c.id, events.c.seq)
            .where(events.c.type == "project.transitioned", events.c.project_id == project_id)
            .order_by(events.c.id)
            .limit(1)
        ).one()
        conn.execute(
            sa.update(events)
            .where(events.c.id == target.id)
            .values(
                data='{"action":"close_collection","fields":{},"from":"demand_collection",'
                '"to":"completed"}'
            )
        )
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok
    assert report.first_bad == {
        "chain": community,
        "seq": target.seq,
        "event_id": target.id,
        "reason": "事件内容与哈希不符（事件被篡改）",
    }


def test_verify_finds_an_event_removed_from_the_middle_of_a_chain(fresh_z: Zizhi) -> None:
    community, _ = _some_project_history(fresh_z)
    _drop_append_only_guard(fresh_z)
    with fresh_z.db.write() as conn:
        conn.execute(sa.delete(events).where(events.c.chain == community, events.c.seq == 3))
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok and report.first_bad is not None
    assert (report.first_bad["chain"], report.first_bad["seq"]) == (community, 3)


def test_verify_finds_events_cut_from_the_end_of_a_chain(fresh_z: Zizhi) -> None:
    community, _ = _some_project_history(fresh_z)
    _drop_append_only_guard(fresh_z)
    with fresh_z.db.write() as conn:
        last = conn.execute(
            sa.select(sa.func.max(events.c.seq)).where(events.c.chain == community)
        ).scalar_one()
        conn.execute(sa.delete(events).where(events.c.chain == community, events.c.seq == last))
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok and report.first_bad is not None
    assert "末尾事件缺失" in report.first_bad["reason"]


def test_verify_finds_a_balance_that_no_longer_matches_its_entries(fresh_z: Zizhi) -> None:
    community, _ = _some_project_history(fresh_z)
    with fresh_z.db.write() as conn:
        conn.execute(
            sa.text(
                "UPDATE fund_accounts SET allocated_fen = allocated_fen + 1 WHERE community_id = :c"
            ),
            {"c": community},
        )
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad["reason"] == "账户余额不等于其分录之和"


def test_verify_finds_a_project_whose_money_was_altered(fresh_z: Zizhi) -> None:
    _, project_id = _some_project_history(fresh_z)
    with fresh_z.db.write() as conn:
        conn.execute(sa.text("UPDATE projects SET spent_fen = 1 WHERE id = :p"), {"p": project_id})
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok and report.first_bad is not None
    assert f"项目 {project_id}" in report.first_bad["reason"]


def _cli(z: Zizhi, *args: str) -> subprocess.CompletedProcess[str]:
    url = z.db.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        env={**os.environ, "ZIZHI_DATABASE_URL": url},
        timeout=120,
        check=False,
    )


def test_zizhi_verify_passes_on_a_clean_history_and_fails_on_an_edited_event(
    fresh_z: Zizhi,
) -> None:
    _, project_id = _some_project_history(fresh_z)
    clean = _cli(fresh_z, "verify")
    assert clean.returncode == 0, clean.stderr
    assert "校验通过" in clean.stdout
    _drop_append_only_guard(fresh_z)
    with fresh_z.db.write() as conn:
        conn.execute(
            sa.text(
                "UPDATE events SET actor = 'token:someone-else' "
                "WHERE project_id = :p AND type = 'project.created'"
            ),
            {"p": project_id},
        )
        conn.commit()
    broken = _cli(fresh_z, "verify")
    assert broken.returncode == 1
    assert "校验失败" in broken.stdout and "事件被篡改" in broken.stdout


def test_history_of_a_project_is_oldest_first_and_linked(world: World, z: Zizhi) -> None:
    community = world.community()
    project = world.advance(world.project(community), "review")
    history = engine.project_history(z, world.committee(community), project.id)
    assert [e.type for e in history] == ["project.created", "demand.created"] + [
        "project.transitioned"
    ] * 3
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert all(e.chain == community for e in history)
    assert engine.get_project(z, CLI, project.id).state == "review"
