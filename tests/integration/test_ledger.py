"""The fund ledger: caps, allocations, statements and balances as of a past moment."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import engine
from engine.errors import FundCapExceeded, ValidationFailed
from engine.model import CLI, AllocationPolicy
from engine.store.tables import events, ledger_entries
from engine.store.uow import Zizhi
from tests.factories import VOTE, World


def _counts(z: Zizhi) -> tuple[int, int]:
    with z.read() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar_one(),
        )


def test_an_approval_beyond_the_available_fund_is_refused_and_changes_nothing(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    first = world.advance(world.project(community), "review", budget_fen=3_000_000)
    second = world.advance(world.project(community), "review", budget_fen=3_000_000)
    engine.fire(z, committee, first.id, "approve", VOTE)
    before = _counts(z)
    with pytest.raises(FundCapExceeded, match="可用经费 2000000 分"):
        engine.fire(z, committee, second.id, "approve", VOTE)
    assert _counts(z) == before
    unchanged = engine.get_project(z, committee, second.id)
    assert (unchanged.state, unchanged.version, unchanged.reserved_fen) == (
        "review",
        second.version,
        0,
    )


def test_a_plan_over_the_available_fund_is_refused_at_submission(world: World, z: Zizhi) -> None:
    community = world.community()
    project = world.advance(world.project(community), "planning")
    with pytest.raises(FundCapExceeded):
        engine.fire(
            z,
            world.committee(community),
            project.id,
            "submit_plan",
            {"budget_fen": 5_000_001, "plan": "超预算"},
        )


def test_an_expense_can_never_take_more_than_what_is_left_of_the_reservation(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "implementation", budget_fen=1_000)
    engine.record_expense(
        z,
        committee,
        project.id,
        {"amount_fen": 600, "payee": "甲", "invoice_no": "1", "description": "材料"},
    )
    with pytest.raises(FundCapExceeded, match="剩余预留经费 400 分"):
        engine.record_expense(
            z,
            committee,
            project.id,
            {"amount_fen": 401, "payee": "甲", "invoice_no": "2", "description": "材料"},
        )
    engine.record_expense(
        z,
        committee,
        project.id,
        {"amount_fen": 400, "payee": "甲", "invoice_no": "2", "description": "材料"},
    )
    done = engine.get_project(z, committee, project.id)
    assert (done.reserved_fen, done.spent_fen) == (0, 1_000)


def test_an_allocation_can_be_raised_or_lowered_but_never_below_what_is_committed(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    officer = world.street_officer(world.street_of(community))
    project = world.advance(world.project(community), "implementation", budget_fen=2_000_000)
    engine.record_expense(
        z,
        world.committee(community),
        project.id,
        {"amount_fen": 500_000, "payee": "乙", "invoice_no": "A", "description": "施工"},
    )
    year = project.year
    raised = engine.set_allocation(z, officer, community, "self_governance", year, 6_000_000)
    assert (raised.allocated_fen, raised.available_fen) == (6_000_000, 4_000_000)
    lowered = engine.set_allocation(z, CLI, community, "self_governance", year, 2_000_000)
    assert lowered.available_fen == 0
    with pytest.raises(FundCapExceeded, match="已预留和已支出的合计 2000000 分"):
        engine.set_allocation(z, officer, community, "self_governance", year, 1_999_999)
    lines = engine.statement(z, CLI, community, "self_governance", year).items
    assert [(line.kind, line.amount_fen) for line in lines] == [
        ("allocate", 5_000_000),
        ("reserve", 2_000_000),
        ("spend", 500_000),
        ("allocate", 1_000_000),
        ("allocate", -4_000_000),
    ]
    assert [line.available_fen for line in lines] == [5_000_000, 3_000_000, 3_000_000, 4_000_000, 0]


def test_a_rural_community_has_no_party_service_fund_until_one_is_set(
    world: World, z: Zizhi
) -> None:
    village = world.community(kind="rural")
    funds = {f.fund: f.allocated_fen for f in engine.funds(z, CLI, village)}
    assert funds == {"self_governance": 5_000_000, "party_service": 0}
    project = world.advance(world.project(village, workflow="party_service"), "planning")
    with pytest.raises(FundCapExceeded):
        engine.fire(
            z,
            world.committee(village),
            project.id,
            "submit_plan",
            {"budget_fen": 1, "plan": "方案"},
        )
    engine.set_allocation(z, CLI, village, "party_service", project.year, 100_000)
    assert (
        engine.fire(
            z,
            world.committee(village),
            project.id,
            "submit_plan",
            {"budget_fen": 100_000, "plan": "方案"},
        ).state
        == "review"
    )


def test_an_explicit_allocation_on_a_fresh_year_opens_the_account_with_it(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    fund = engine.set_allocation(z, CLI, community, "self_governance", 2030, 7_000_000)
    assert fund.allocated_fen == 7_000_000
    lines = engine.statement(z, CLI, community, "self_governance", 2030).items
    assert [(line.kind, line.amount_fen) for line in lines] == [("allocate", 7_000_000)]


def test_balances_can_be_read_as_of_a_past_moment(world: World, z: Zizhi, registry: object) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "implementation", budget_fen=1_500_000)
    reserved_at = engine.get_project(z, committee, project.id).updated_at
    engine.record_expense(
        z,
        committee,
        project.id,
        {"amount_fen": 250_000, "payee": "丙", "invoice_no": "T1", "description": "宣传"},
    )
    now = engine.funds(z, committee, community)[0]
    assert (now.reserved_fen, now.spent_fen) == (1_250_000, 250_000)
    then = engine.funds(z, committee, community, as_of=reserved_at)[0]
    assert (then.reserved_fen, then.spent_fen) == (1_500_000, 0)
    before = engine.funds(
        z, committee, community, as_of=reserved_at - timedelta(days=400), year=project.year
    )[0]
    assert (before.allocated_fen, before.reserved_fen, before.spent_fen) == (5_000_000, 0, 0)


def test_a_naive_as_of_moment_is_refused(world: World, z: Zizhi) -> None:
    community = world.community()
    with pytest.raises(ValidationFailed):
        engine.funds(z, CLI, community, as_of=z.clock().replace(tzinfo=None))


def test_the_database_itself_refuses_a_balance_over_the_cap(world: World, z: Zizhi) -> None:
    community = world.community()
    engine.set_allocation(z, CLI, community, "self_governance", 2031, 100)
    with pytest.raises(sa.exc.IntegrityError), z.db.write() as conn:
        conn.execute(
            sa.text(
                "UPDATE fund_accounts SET reserved_fen = 101 "
                "WHERE community_id = :c AND year = 2031"
            ),
            {"c": community},
        )


def test_allocations_below_the_policy_floor_are_refused(z: Zizhi) -> None:
    world = World(z)
    community, village = world.community(), world.community(kind="rural")
    with pytest.raises(ValidationFailed, match="不少于 20000000 分") as refused:
        engine.set_allocation(z, CLI, community, "party_service", 2032, 19_999_999)
    assert "allocated_fen" in refused.value.errors
    assert engine.set_allocation(z, CLI, community, "party_service", 2032, 20_000_000)
    assert engine.set_allocation(z, CLI, village, "party_service", 2032, 1)
    strict = Zizhi(z.db, z.workflows, policy=AllocationPolicy(self_governance_min_fen=1_000_000))
    with pytest.raises(ValidationFailed, match="不少于 1000000 分（10,000.00 元）"):
        engine.set_allocation(strict, CLI, community, "self_governance", 2032, 999_999)
    assert engine.set_allocation(strict, CLI, community, "self_governance", 2032, 1_000_000)
