"""Closing a fiscal year releases every open reservation at once and takes no new ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine.errors import AlreadyExists, Forbidden, FundCapExceeded, YearClosed
from engine.model import CLI
from engine.store import uow
from engine.store.ledger import Ledger
from engine.store.tables import closed_years, events
from engine.store.uow import Zizhi
from tests.concurrency import race
from tests.factories import VOTE, World

LAST_YEAR = 2024


@pytest.fixture
def past(fresh_z: Zizhi) -> Zizhi:
    """The fresh database, with the clock in the middle of a past year."""
    return Zizhi(
        fresh_z.db, fresh_z.workflows, clock=lambda: datetime(LAST_YEAR, 6, 1, 2, 0, tzinfo=UTC)
    )


def _spend(
    z: Zizhi,
    world: World,
    community: str,
    budget: int,
    spent: int,
    workflow: str = "self_governance",
) -> int:
    committee = world.committee(community)
    project = world.advance(
        world.project(community, workflow=workflow), "implementation", budget_fen=budget
    )
    if spent:
        engine.record_expense(
            z,
            committee,
            project.id,
            {
                "amount_fen": spent,
                "payee": "施工队",
                "invoice_no": f"{project.id}",
                "description": "材料",
            },
        )
    return project.id


def test_closing_a_year_releases_every_open_reservation_and_keeps_what_was_spent(
    past: Zizhi,
) -> None:
    world = World(past)
    a, b = world.community(), world.community()
    first = _spend(past, world, a, 1_000_000, 300_000)
    second = _spend(past, world, a, 500_000, 0, workflow="party_service")
    third = _spend(past, world, b, 2_000_000, 2_000_000)  # fully spent: nothing to release
    closed = engine.close_year(past, CLI, LAST_YEAR, force=True)
    assert (closed.closed, closed.projects_released, closed.released_fen) == (
        True,
        2,
        700_000 + 500_000,
    )
    for pid, spent in ((first, 300_000), (second, 0), (third, 2_000_000)):
        p = engine.get_project(past, CLI, pid)
        assert (p.reserved_fen, p.spent_fen) == (0, spent)
    funds = {
        (f.community_id, f.fund): f
        for c in (a, b)
        for f in engine.funds(past, CLI, c, year=LAST_YEAR)
    }
    assert (
        funds[(a, "self_governance")].reserved_fen,
        funds[(a, "self_governance")].spent_fen,
    ) == (0, 300_000)
    assert funds[(a, "party_service")].reserved_fen == 0
    assert funds[(b, "self_governance")].spent_fen == 2_000_000
    history = engine.project_history(past, CLI, first)
    assert [e.type for e in history[-2:]] == ["project.year_closed", "ledger.released"]
    assert engine.replay_project(history).version == engine.get_project(past, CLI, first).version
    report = engine.verify(past, CLI)
    assert report.ok, report.first_bad
    assert engine.year_status(past, CLI, LAST_YEAR).closed


def test_a_closed_year_takes_no_new_reservations_or_allocation_changes(past: Zizhi) -> None:
    world = World(past)
    community = world.community()
    committee = world.committee(community)
    waiting = world.advance(world.project(community), "review", budget_fen=100_000)
    running = _spend(past, world, community, 100_000, 0)
    engine.close_year(past, CLI, LAST_YEAR, force=True)
    with pytest.raises(YearClosed, match="2024 年度已结账"):
        engine.fire(past, committee, waiting.id, "approve", VOTE)
    with pytest.raises(YearClosed):
        engine.set_allocation(past, CLI, community, "self_governance", LAST_YEAR, 9_000_000)
    with pytest.raises(FundCapExceeded):
        engine.record_expense(
            past,
            committee,
            running,
            {"amount_fen": 1, "payee": "甲", "invoice_no": "late", "description": "结账后"},
        )
    with pytest.raises(AlreadyExists):
        engine.close_year(past, CLI, LAST_YEAR, force=True)
    assert (
        engine.set_allocation(
            past, CLI, community, "self_governance", LAST_YEAR + 1, 100
        ).allocated_fen
        == 100
    )  # other years are untouched
    assert (
        engine.fire(past, committee, waiting.id, "cancel", {"reason": "年度已结账"}).state
        == "cancelled"
    )


def test_only_an_admin_closes_a_year(past: Zizhi) -> None:
    world = World(past)
    with pytest.raises(Forbidden):
        engine.close_year(past, world.auditor(), LAST_YEAR)


def test_a_close_that_fails_midway_changes_nothing(
    past: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(past)
    community = world.community()
    held = [_spend(past, world, community, 100_000, 0) for _ in range(3)]
    original = Ledger.release
    calls = 0

    def fail_on_second(self: Ledger, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        original(self, *args)

    monkeypatch.setattr(Ledger, "release", fail_on_second)
    with pytest.raises(RuntimeError):
        engine.close_year(past, CLI, LAST_YEAR, force=True)
    monkeypatch.undo()
    assert [engine.get_project(past, CLI, p).reserved_fen for p in held] == [100_000] * 3
    with past.read() as conn:
        assert conn.execute(sa.select(closed_years)).all() == []
        assert conn.execute(sa.select(events).where(events.c.type == "year.closed")).all() == []
    assert not engine.year_status(past, CLI, LAST_YEAR).closed


def test_approvals_racing_a_close_are_either_released_or_refused(past: Zizhi) -> None:
    world = World(past)
    communities = [world.community() for _ in range(3)]
    waiting = [
        world.advance(world.project(c), "review", budget_fen=200_000)
        for c in communities
        for _ in range(3)
    ]
    calls = [
        lambda p=p: engine.fire(past, world.committee(p.community_id), p.id, "approve", VOTE)
        for p in waiting
    ]
    results = race([*calls, lambda: engine.close_year(past, CLI, LAST_YEAR, force=True)])
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, YearClosed)], (
        results
    )
    for p in waiting:  # nothing stays reserved in the closed year, whoever won each race
        assert engine.get_project(past, CLI, p.id).reserved_fen == 0
    for c in communities:
        assert engine.funds(past, CLI, c, year=LAST_YEAR)[0].reserved_fen == 0
    report = engine.verify(past, CLI)
    assert report.ok, report.first_bad


def test_a_close_waits_for_an_approval_in_flight_and_then_releases_it(
    past: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval has reserved but not committed when the close starts."""
    import threading

    world = World(past)
    community = world.community()
    project = world.advance(world.project(community), "review", budget_fen=300_000)
    reserved, go = threading.Event(), threading.Event()
    original = uow.save_project

    def paused_save(change: Any, record: Any) -> None:
        original(change, record)
        reserved.set()
        go.wait(30)

    monkeypatch.setattr(uow, "save_project", paused_save)
    approval = threading.Thread(
        target=lambda: engine.fire(past, world.committee(community), project.id, "approve", VOTE)
    )
    approval.start()
    assert reserved.wait(30)
    outcome: list[Any] = []
    close = threading.Thread(
        target=lambda: outcome.append(engine.close_year(past, CLI, LAST_YEAR, force=True))
    )
    close.start()
    close.join(1.0)
    assert close.is_alive()  # the close waits for the approval in flight
    go.set()
    approval.join(30)
    close.join(30)
    assert outcome[0].projects_released == 1
    assert engine.get_project(past, CLI, project.id).reserved_fen == 0
