"""When a year may be closed, what a closed year refuses, and undoing a close."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import engine
from engine.errors import ActionNotAllowed, Forbidden, NotFound, ValidationFailed, YearClosed
from engine.model import CLI
from engine.store.tables import events
from engine.store.uow import Zizhi
from tests.factories import VOTE, World

YEAR = 2024


def clocked(z: Zizhi, moment: datetime) -> Zizhi:
    return Zizhi(z.db, z.workflows, clock=lambda: moment)


@pytest.fixture
def during(fresh_z: Zizhi) -> Zizhi:
    """A fresh database whose clock is in the middle of YEAR."""
    return clocked(fresh_z, datetime(YEAR, 6, 1, 2, 0, tzinfo=UTC))


def _state(z: Zizhi) -> tuple[int, ...]:
    with z.read() as conn:
        return tuple(
            conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("events", "ledger_entries", "projects", "closed_years")
        )


def test_a_year_closes_only_once_it_has_ended_in_shanghai(fresh_z: Zizhi) -> None:
    # 2024-12-31 23:59:59 in Shanghai is 15:59:59 UTC; the year ends a second later.
    last_second = clocked(fresh_z, datetime(YEAR, 12, 31, 15, 59, 59, tzinfo=UTC))
    before = _state(fresh_z)
    for year in (YEAR, YEAR + 1):
        with pytest.raises(ValidationFailed, match="尚未结束") as refused:
            engine.close_year(last_second, CLI, year)
        assert "year" in refused.value.errors
    assert _state(fresh_z) == before
    new_year = clocked(fresh_z, datetime(YEAR, 12, 31, 16, 0, 0, tzinfo=UTC))
    assert engine.close_year(new_year, CLI, YEAR).closed
    with pytest.raises(ValidationFailed):
        engine.close_year(new_year, CLI, YEAR + 1)


def test_force_closes_a_year_that_has_not_ended(during: Zizhi) -> None:
    assert engine.close_year(during, CLI, YEAR, force=True).closed
    assert engine.year_status(during, CLI, YEAR).closed


def test_a_closed_year_takes_no_new_projects_or_plans(during: Zizhi) -> None:
    world = World(during)
    community = world.community()
    committee = world.committee(community)
    planning = world.advance(world.project(community), "planning")
    engine.close_year(during, CLI, YEAR, force=True)
    before = _state(during)
    with pytest.raises(YearClosed, match="2024 年度已结账，不能再新建项目"):
        world.project(community, committee=committee)
    with pytest.raises(YearClosed, match="不能再提交方案"):
        engine.fire(
            during,
            committee,
            planning.id,
            "submit_plan",
            {"budget_fen": 100_000, "plan": "清理通道"},
        )
    assert _state(during) == before
    # What needs no money still works: the project can be given up.
    assert engine.fire(during, committee, planning.id, "cancel", {"reason": "年度已结账"}).state


def test_the_year_reports_what_its_close_released(during: Zizhi) -> None:
    world = World(during)
    community = world.community()
    for budget in (100_000, 250_000):
        world.advance(world.project(community), "implementation", budget_fen=budget)
    assert engine.year_status(during, CLI, YEAR) == engine.YearView(year=YEAR, closed=False)
    closed = engine.close_year(during, CLI, YEAR, force=True)
    status = engine.year_status(during, CLI, YEAR)
    assert (status.closed, status.closed_at, status.projects_released, status.released_fen) == (
        True,
        closed.closed_at,
        2,
        350_000,
    )


def test_reopening_gives_every_released_project_its_reservation_back(during: Zizhi) -> None:
    world = World(during)
    a, b = world.community(), world.community()
    held = [
        world.advance(world.project(a), "implementation", budget_fen=300_000),
        world.advance(world.project(a, workflow="party_service"), "implementation", budget_fen=7),
        world.advance(world.project(b), "implementation", budget_fen=500_000),
    ]
    waiting = world.advance(world.project(b), "review", budget_fen=100_000)
    funds_before = {c: engine.funds(during, CLI, c, year=YEAR) for c in (a, b)}
    engine.close_year(during, CLI, YEAR, force=True)
    reopened = engine.reopen_year(during, CLI, YEAR)
    assert (reopened.closed, reopened.projects_restored, reopened.restored_fen) == (
        False,
        3,
        800_007,
    )
    assert not engine.year_status(during, CLI, YEAR).closed
    assert {c: engine.funds(during, CLI, c, year=YEAR) for c in (a, b)} == funds_before
    for project, budget in zip(held, (300_000, 7, 500_000), strict=True):
        now = engine.get_project(during, CLI, project.id)
        assert (now.reserved_fen, now.state) == (budget, "implementation")
        history = engine.project_history(during, CLI, project.id)
        assert [e.type for e in history[-2:]] == ["project.year_reopened", "ledger.reserved"]
        assert engine.replay_project(history).version == now.version
        assert engine.replay_project(history).reserved_fen == budget
    with during.read() as conn:
        reopen = conn.execute(sa.select(events).where(events.c.type == "year.reopened")).one()
    assert reopen.chain == engine.SYSTEM_CHAIN and reopen.actor == CLI.id
    # The year is open again: approvals reserve, and it can be closed once more.
    engine.fire(during, World.committee(b), waiting.id, "approve", VOTE)
    again = engine.close_year(during, CLI, YEAR, force=True)
    assert (again.projects_released, again.released_fen) == (4, 900_007)
    report = engine.verify(during, CLI)
    assert report.ok, report.first_bad


def test_a_close_cannot_be_undone_once_a_released_project_moved_on(during: Zizhi) -> None:
    world = World(during)
    community = world.community()
    project = world.advance(world.project(community), "implementation", budget_fen=300_000)
    engine.close_year(during, CLI, YEAR, force=True)
    engine.fire(during, world.committee(community), project.id, "cancel", {"reason": "不再实施"})
    before = _state(during)
    with pytest.raises(ActionNotAllowed, match=f"项目 {project.id}"):
        engine.reopen_year(during, CLI, YEAR)
    assert _state(during) == before
    assert engine.year_status(during, CLI, YEAR).closed


def test_only_an_admin_reopens_and_only_a_closed_year(during: Zizhi) -> None:
    world = World(during)
    with pytest.raises(NotFound, match="没有结账"):
        engine.reopen_year(during, CLI, YEAR)
    engine.close_year(during, CLI, YEAR, force=True)
    for who in (world.auditor(), world.street_officer("某街道")):
        with pytest.raises(Forbidden):
            engine.reopen_year(during, who, YEAR)
    assert engine.year_status(during, CLI, YEAR).closed
