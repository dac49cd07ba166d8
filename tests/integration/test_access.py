"""Scopes: a principal never sees or touches what lies outside its communities or streets."""

from __future__ import annotations

import time

import pytest

import engine
from engine.errors import Forbidden, NotFound
from engine.model import CLI
from engine.store.uow import Zizhi
from engine.usecases.audit import EventFilter
from tests.factories import VOTE, World


def test_a_committee_cannot_see_or_touch_another_communitys_project(world: World, z: Zizhi) -> None:
    ours, theirs = world.community(), world.community()
    project = world.advance(world.project(theirs), "review")
    intruder = world.committee(ours)
    with pytest.raises(NotFound):
        engine.get_project(z, intruder, project.id)
    with pytest.raises(NotFound):
        engine.fire(z, intruder, project.id, "approve", VOTE)
    with pytest.raises(NotFound):
        engine.project_history(z, intruder, project.id)
    with pytest.raises(NotFound):
        engine.funds(z, intruder, theirs)
    with pytest.raises(NotFound):
        engine.open_project(
            z,
            intruder,
            community_id=theirs,
            workflow="self_governance",
            title="越界",
            category="居民自治类",
        )
    assert engine.list_projects(z, intruder, community_id=theirs).items == []
    assert engine.get_project(z, CLI, project.id).state == "review"


def test_a_street_officer_sees_every_community_of_the_street_and_no_other(
    world: World, z: Zizhi
) -> None:
    street = "测试街道-" + world.community()
    inside, outside = world.community(street=street), world.community()
    officer = world.street_officer(street)
    mine = world.project(inside)
    other = world.project(outside)
    assert engine.get_project(z, officer, mine.id).allowed_actions == ["cancel"]
    with pytest.raises(NotFound):
        engine.get_project(z, officer, other.id)
    with pytest.raises(NotFound):
        engine.set_allocation(z, officer, outside, "self_governance", 2026, 1)
    seen = {c.id for c in engine.list_communities(z, officer, limit=500).items}
    assert inside in seen and outside not in seen


def test_roles_may_only_do_what_the_workflow_gives_them(world: World, z: Zizhi) -> None:
    community = world.community()
    officer = world.street_officer(world.street_of(community))
    project = world.advance(world.project(community), "review")
    with pytest.raises(Forbidden):
        engine.fire(z, officer, project.id, "approve", VOTE)
    with pytest.raises(Forbidden):
        engine.fire(z, world.auditor(), project.id, "cancel", {"reason": "审计不能撤销"})
    with pytest.raises(Forbidden):
        engine.open_project(
            z,
            officer,
            community_id=community,
            workflow="self_governance",
            title="街道不能立项",
            category="居民自治类",
        )
    with pytest.raises(Forbidden):
        engine.set_allocation(z, world.committee(community), community, "self_governance", 2026, 1)
    with pytest.raises(Forbidden):
        engine.query_events(z, world.committee(community), EventFilter())


def test_residents_personal_data_is_shown_to_their_committee_and_auditors_only(
    world: World, z: Zizhi
) -> None:
    street = "隐私街道-" + world.community()
    community = world.community(street=street)
    committee = world.committee(community)
    demand = engine.record_demand(
        z,
        committee,
        community,
        {"content": "路灯坏了", "resident": "李阿姨", "contact": "13900000000"},
    )
    assert (demand.resident, demand.contact) == ("李阿姨", "13900000000")
    by = {
        p: engine.list_demands(z, p, community_id=community).items[0]
        for p in (committee, world.auditor(), world.street_officer(street), CLI)
    }
    assert [(d.resident, d.contact) for d in by.values()] == [
        ("李阿姨", "13900000000"),
        ("李阿姨", "13900000000"),
        (None, None),
        (None, None),
    ]
    history = engine.query_events(z, world.auditor(), EventFilter(community_id=community)).items
    assert "李阿姨" not in repr(history) and "13900000000" not in repr(history)


def test_a_street_auditor_sees_only_the_events_of_its_street(world: World, z: Zizhi) -> None:
    street = "审计街道-" + world.community()
    inside, outside = world.community(street=street), world.community()
    officer = world.street_officer(street)
    for _ in range(100):  # the feed may end early for a moment (tests.factories.settled)
        seen = {e.community_id for e in engine.stream_events(z, officer, EventFilter())}
        assert outside not in seen and None not in seen
        if inside in seen:
            break
        time.sleep(0.05)
    assert inside in seen
