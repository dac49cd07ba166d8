"""Full lifecycles through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import engine
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.factories import PATHS, World, assert_replays_to


@pytest.mark.parametrize("workflow", ["self_governance", "party_service"])
def test_a_project_runs_through_every_step_and_returns_what_it_did_not_spend(
    world: World, z: Zizhi, workflow: str
) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.project(community, workflow=workflow, committee=committee)
    assert project.state == "demand_collection"
    project = world.advance(project, "implementation", budget_fen=2_000_000, committee=committee)
    assert (project.budget_fen, project.reserved_fen, project.spent_fen) == (
        2_000_000,
        2_000_000,
        0,
    )
    engine.record_expense(
        z,
        committee,
        project.id,
        {
            "amount_fen": 1_234_567,
            "payee": "物业公司",
            "invoice_no": "INV-1",
            "description": "清运",
        },
    )
    project = world.advance(
        engine.get_project(z, committee, project.id), "completed", committee=committee
    )
    assert (project.reserved_fen, project.spent_fen) == (0, 1_234_567)
    fund = {f.fund: f for f in engine.funds(z, committee, community)}[workflow]
    assert (fund.allocated_fen, fund.reserved_fen, fund.spent_fen) == (
        fund.allocated_fen,
        0,
        1_234_567,
    )
    assert fund.available_fen == fund.allocated_fen - 1_234_567
    actions = [
        e.data["action"]
        for e in engine.project_history(z, committee, project.id)
        if e.type == "project.transitioned"
    ]
    assert actions == [action for _, action, _ in PATHS[workflow]]


def test_rectification_returns_to_implementation_and_allows_more_expenses(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "evaluation", committee=committee)
    project = engine.fire(z, committee, project.id, "rectify", {"issues": "仍有堆物"})
    assert project.state == "implementation"
    engine.record_expense(
        z,
        committee,
        project.id,
        {"amount_fen": 100, "payee": "物业", "invoice_no": "R-1", "description": "补充清运"},
    )
    assert engine.get_project(z, committee, project.id).spent_fen == 100


def test_a_plan_returned_for_revision_can_be_resubmitted_with_a_new_budget(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(
        world.project(community), "review", budget_fen=900_000, committee=committee
    )
    project = engine.fire(z, committee, project.id, "return_for_revision", {"reason": "太贵"})
    project = engine.fire(
        z, committee, project.id, "submit_plan", {"budget_fen": 600_000, "plan": "精简方案"}
    )
    assert (project.state, project.budget_fen, project.reserved_fen) == ("review", 600_000, 0)


def test_cancelling_an_approved_project_releases_its_reservation(world: World, z: Zizhi) -> None:
    community = world.community()
    officer = world.street_officer(world.street_of(community))
    project = world.advance(world.project(community), "implementation", budget_fen=700_000)
    project = engine.fire(z, officer, project.id, "cancel", {"reason": "需求已由他途解决"})
    assert (project.state, project.reserved_fen) == ("cancelled", 0)
    fund = engine.funds(z, CLI, community)[0]
    assert (fund.reserved_fen, fund.spent_fen, fund.available_fen) == (0, 0, fund.allocated_fen)


def test_replaying_a_projects_history_gives_its_current_state(world: World, z: Zizhi) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(
        world.project(community), "implementation", budget_fen=800_000, committee=committee
    )
    for n in range(3):
        engine.record_expense(
            z,
            committee,
            project.id,
            {
                "amount_fen": 10_000 * (n + 1),
                "payee": "供应商",
                "invoice_no": f"RP-{n}",
                "description": "材料",
            },
        )
    project = world.advance(
        engine.get_project(z, committee, project.id), "feedback", committee=committee
    )
    assert_replays_to(engine.project_history(z, committee, project.id), project)


def test_a_project_keeps_the_workflow_version_it_started_with(world: World) -> None:
    project = world.project(world.community())
    assert (project.workflow, project.workflow_version, project.fund) == (
        "self_governance",
        1,
        "self_governance",
    )
