"""Residents' names and contacts (PIPL): committed to by a salted hash, erasable on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

import engine
from engine.errors import AlreadyExists, Forbidden, NotFound
from engine.model import CLI
from engine.rules import personal
from engine.store.tables import demands, events
from engine.store.uow import Zizhi
from tests.factories import World

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME, PHONE = "王\u3000老伯", "１３９ ０００１ ２３４５"  # as typed: ideographic space, full width


def _demand(z: Zizhi, world: World, community: str) -> engine.DemandView:
    return engine.record_demand(
        z,
        world.committee(community),
        community,
        {"content": "楼道里堆满杂物", "resident": NAME, "contact": PHONE},
    )


def _created_event(z: Zizhi, demand_id: int) -> dict[str, object]:
    with z.read() as conn:
        rows = conn.execute(
            sa.select(events.c.data).where(events.c.type == "demand.created")
        ).scalars()
        found = [json.loads(d) for d in rows if json.loads(d)["demand_id"] == demand_id]
    assert len(found) == 1
    return dict(found[0])


def test_the_history_commits_to_a_salted_hash_never_the_text(z: Zizhi, world: World) -> None:
    community = world.community()
    demand = _demand(z, world, community)
    data = _created_event(z, demand.id)
    text = json.dumps(data, ensure_ascii=False)
    for fragment in ("王", "老伯", "139", "１３９", "0001"):
        assert fragment not in text
    with z.read() as conn:
        row = conn.execute(sa.select(demands).where(demands.c.id == demand.id)).one()
    assert row.personal_salt is not None and len(row.personal_salt) == 32
    assert data["personal"] == personal.commitment(row.personal_salt, row.resident, row.contact)
    # Two residents of the same name do not share a commitment: each demand has its own salt.
    other = _demand(z, world, community)
    assert _created_event(z, other.id)["personal"] != data["personal"]


def test_an_admin_erases_a_resident_s_name_and_contact_and_history_still_verifies(
    fresh_z: Zizhi,
) -> None:
    world = World(fresh_z)
    community = world.community()
    committee = world.committee(community)
    project = world.project(community)
    demand = _demand(fresh_z, world, community)
    linked = engine.add_to_project(fresh_z, committee, project.id, {"demand_id": demand.id})
    erased = engine.erase_personal_data(fresh_z, CLI, community, demand.id)
    assert erased.erased_at is not None and (erased.resident, erased.contact) == (None, None)
    with fresh_z.read() as conn:
        row = conn.execute(sa.select(demands).where(demands.c.id == demand.id)).one()
        last = conn.execute(sa.select(events).order_by(events.c.id.desc()).limit(1)).one()
    assert (row.resident, row.contact, row.personal_salt) == (None, None, None)
    assert row.content == "楼道里堆满杂物" and row.project_id == project.id
    assert (last.type, json.loads(last.data), last.actor) == (
        "demand.erased",
        {"demand_id": demand.id},
        "cli",
    )
    report = engine.verify(fresh_z, CLI)
    assert report.ok, report.first_bad
    # The erasure does not change the project: its version (ETag) stays.
    assert engine.get_project(fresh_z, CLI, project.id).version == linked.project_version
    # Its own committee and auditors, who saw the name, no longer do.
    for reader in (committee, World.auditor()):
        shown = engine.get_demand(fresh_z, reader, community, demand.id)
        assert (shown.resident, shown.contact, shown.erased_at) == (None, None, row.erased_at)
    # Putting a name back by hand is caught.
    with fresh_z.db.write() as conn:
        conn.execute(sa.update(demands).where(demands.c.id == demand.id).values(resident="王老伯"))
        conn.commit()
    report = engine.verify(fresh_z, CLI)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad["reason"] == f"需求 {demand.id} 的 resident 与历史记录不符"


def test_erasure_is_for_admins_once_and_of_a_demand_that_exists(z: Zizhi, world: World) -> None:
    community = world.community()
    demand = _demand(z, world, community)
    with pytest.raises(Forbidden):
        engine.erase_personal_data(z, world.committee(community), community, demand.id)
    with pytest.raises(Forbidden):
        engine.erase_personal_data(z, World.auditor(), community, demand.id)
    with pytest.raises(NotFound):
        engine.erase_personal_data(z, CLI, community, demand.id + 1000)
    with pytest.raises(NotFound):
        engine.erase_personal_data(z, CLI, world.community(), demand.id)  # another community's
    engine.erase_personal_data(z, CLI, community, demand.id)
    with pytest.raises(AlreadyExists):
        engine.erase_personal_data(z, CLI, community, demand.id)


def test_a_public_demand_without_contact_is_erasable_too(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    community = world.community()
    demand = engine.record_demand(fresh_z, None, community, {"content": "路灯", "resident": "张"})
    assert "personal" in _created_event(fresh_z, demand.id)
    engine.erase_personal_data(fresh_z, CLI, community, demand.id)
    assert engine.verify(fresh_z, CLI).ok


def test_zizhi_demand_erase_on_the_command_line(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    community = world.community()
    demand = _demand(fresh_z, world, community)
    url = fresh_z.db.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "demand", "erase", community, str(demand.id)],
        cwd=REPO,
        text=True,
        capture_output=True,
        env={**os.environ, "ZIZHI_DATABASE_URL": url},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"需求 {demand.id}" in done.stdout and NAME not in done.stdout
    assert engine.get_demand(fresh_z, CLI, community, demand.id).erased_at is not None
    assert engine.verify(fresh_z, CLI).ok


@pytest.mark.parametrize("where", ["pool", "project"])
def test_a_retried_request_s_kept_answer_holds_no_name_or_contact(
    z: Zizhi, world: World, where: str
) -> None:
    """The answer an Idempotency-Key keeps for a retry lives outside the demand's row, so it
    must not hold what an erasure has to remove; a retry reads them from the row, as it is."""
    community = world.community()
    committee = world.committee(community)
    data = {"content": "楼道里堆满杂物", "resident": NAME, "contact": PHONE}
    key = engine.IdempotencyKey(committee.id, f"erase-{where}", "digest")

    project = world.project(community, committee=committee)

    def record() -> engine.DemandView:
        if where == "pool":
            return engine.record_demand(z, committee, community, data, idempotency=key)
        return engine.add_to_project(z, committee, project.id, data, idempotency=key)

    first = record()
    assert first.resident == "王　老伯"
    with z.read() as conn:
        kept = (
            conn.execute(
                sa.text("SELECT result FROM idempotency_keys WHERE key = :k"), {"k": key.key}
            )
            .scalars()
            .all()
        )
    # The phone's pieces as kept text could show them, none of which a time or an id can
    # hold ("139" alone can: a timestamp's microseconds were once …828139).
    pieces = ("王", "老伯", "13900012345", "139 0001", "0001 2345", "１３９")
    assert len(kept) == 1 and not any(f in r for r in kept for f in pieces)
    again = record()
    assert again == first  # the retry answers as the first request did
    engine.erase_personal_data(z, CLI, community, first.id)
    erased = record()
    assert erased.id == first.id and erased.resident is None and erased.contact is None
