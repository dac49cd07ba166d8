"""Idempotency-Key: a retried request gets its first answer and nothing is done twice."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import engine
from engine.errors import FundCapExceeded, IdempotencyConflict
from engine.model import CLI, IdempotencyKey
from engine.store.tables import events
from engine.store.uow import Zizhi
from tests.concurrency import race
from tests.factories import World


def _events(z: Zizhi, community: str) -> int:
    with z.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(events)
                .where(events.c.community_id == community)
            ).scalar_one()
        )


def test_the_same_key_and_request_returns_the_first_answer_without_doing_it_again(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    key = IdempotencyKey(committee.id, "open-1", "hash-a")
    first = engine.open_project(
        z,
        committee,
        community_id=community,
        workflow="self_governance",
        title="楼道文化",
        category="居民自治类",
        idempotency=key,
    )
    count = _events(z, community)
    again = engine.open_project(
        z,
        committee,
        community_id=community,
        workflow="self_governance",
        title="楼道文化",
        category="居民自治类",
        idempotency=key,
    )
    assert again == first
    assert _events(z, community) == count
    assert len(engine.list_projects(z, committee, community_id=community).items) == 1


def test_a_replayed_action_answers_as_the_first_time_even_after_later_changes(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "screening")
    key = IdempotencyKey(committee.id, "accept-1", "hash-accept")
    first = engine.fire(z, committee, project.id, "accept", {"note": "通过"}, idempotency=key)
    engine.fire(z, committee, project.id, "cancel", {"reason": "后来撤销"})
    replay = engine.fire(z, committee, project.id, "accept", {"note": "通过"}, idempotency=key)
    assert replay == first
    assert replay.state == "planning"  # the first answer, not the current state


def test_the_same_key_with_another_request_is_a_conflict(world: World, z: Zizhi) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "screening")
    engine.fire(
        z,
        committee,
        project.id,
        "accept",
        {"note": "一"},
        idempotency=IdempotencyKey(committee.id, "k", "hash-one"),
    )
    with pytest.raises(IdempotencyConflict):
        engine.fire(
            z,
            committee,
            project.id,
            "cancel",
            {"reason": "二"},
            idempotency=IdempotencyKey(committee.id, "k", "hash-two"),
        )


def test_keys_belong_to_whoever_sent_them(world: World, z: Zizhi) -> None:
    community = world.community()
    one, two = world.committee(community), world.committee(community)
    a = engine.open_project(
        z,
        one,
        community_id=community,
        workflow="self_governance",
        title="甲",
        category="居民自治类",
        idempotency=IdempotencyKey(one.id, "x", "h"),
    )
    b = engine.open_project(
        z,
        two,
        community_id=community,
        workflow="self_governance",
        title="甲",
        category="居民自治类",
        idempotency=IdempotencyKey(two.id, "x", "h"),
    )
    assert a.id != b.id


def test_a_refused_request_is_not_remembered_so_a_retry_can_succeed(world: World, z: Zizhi) -> None:
    community = world.community()
    key = IdempotencyKey(CLI.id, "alloc", "h")
    project = world.advance(world.project(community), "implementation", budget_fen=3_000_000)
    with pytest.raises(FundCapExceeded):
        engine.set_allocation(
            z, CLI, community, "self_governance", project.year, 1, idempotency=key
        )
    assert (
        engine.set_allocation(
            z, CLI, community, "self_governance", project.year, 3_000_000, idempotency=key
        ).allocated_fen
        == 3_000_000
    )


def test_concurrent_duplicates_do_the_work_once(world: World, z: Zizhi) -> None:
    community = world.community()
    committee = world.committee(community)
    key = IdempotencyKey(committee.id, "dup", "same")
    results = race(
        [
            lambda: engine.open_project(
                z,
                committee,
                community_id=community,
                workflow="self_governance",
                title="重复提交",
                category="居民自治类",
                idempotency=key,
            )
            for _ in range(6)
        ]
    )
    assert all(r == results[0] for r in results), results
    assert len(engine.list_projects(z, committee, community_id=community).items) == 1
