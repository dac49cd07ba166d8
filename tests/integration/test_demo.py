"""``zizhi demo``: a small demo district, built through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import engine
from demo.district import DemoResult, generate
from engine import Database
from engine.errors import AlreadyExists
from engine.model import CLI, Role, fiscal_year
from engine.rules.workflow import WorkflowRegistry
from engine.store.uow import Zizhi
from engine.usecases.projects import ProjectView
from tests.conftest import DatabaseFactory
from tests.factories import assert_replays_to
from workflows import load_registry

REPO = Path(__file__).resolve().parents[2]
SIZE, YEARS, SEED = 4, 2, 7


@pytest.fixture(scope="module")
def demo_z(backend: str, databases: DatabaseFactory, registry: WorkflowRegistry) -> Zizhi:
    """An empty database of its own, like ``fresh_z``, shared by this module's readers."""
    return Zizhi(databases.new(backend), registry)


@pytest.fixture(scope="module")
def demo(demo_z: Zizhi) -> DemoResult:
    return generate(demo_z, communities=SIZE, years=YEARS, seed=SEED)


def all_projects(z: Zizhi) -> list[ProjectView]:
    found, cursor = [], None
    while True:
        page = engine.list_projects(z, CLI, limit=500, cursor=cursor)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def test_the_communities_spread_over_several_streets_starting_with_lihe(
    demo_z: Zizhi, demo: DemoResult
) -> None:
    communities = engine.list_communities(demo_z, CLI, limit=500).items
    assert len(communities) == SIZE
    assert len({c.street for c in communities}) == SIZE  # one per street, streets in turn
    lihe = engine.get_community(demo_z, CLI, "lihe")
    assert (lihe.name, lihe.street, lihe.district, lihe.kind) == (
        "里河社区",
        "金阊街道",
        "姑苏区",
        "urban",
    )
    assert {c.kind for c in communities} == {"urban", "rural"}
    assert all(c.name.endswith("村" if c.kind == "rural" else "社区") for c in communities)


def test_this_years_projects_are_in_every_state_of_both_workflows(
    demo_z: Zizhi, demo: DemoResult
) -> None:
    this_year = demo.years[-1]
    current = [p for p in all_projects(demo_z) if p.year == this_year]
    for workflow in ("self_governance", "party_service"):
        states = {p.state for p in current if p.workflow == workflow}
        assert states == set(demo_z.workflows.latest(workflow).states), workflow
    assert Counter(p.state for p in current) == demo.current_states


def test_past_years_are_finished_and_every_community_closed_three_to_five_projects(
    demo_z: Zizhi, demo: DemoResult
) -> None:
    past = [p for p in all_projects(demo_z) if p.year < demo.years[-1]]
    assert {p.year for p in past} == set(demo.years[:-1])
    assert {p.state for p in past} <= {"completed", "rejected", "cancelled"}
    closed = Counter(
        (p.community_id, p.year)
        for p in past
        if p.workflow == "self_governance" and p.state == "completed"
    )
    assert set(closed) == {(c.id, y) for c in demo.places for y in demo.years[:-1]}
    assert all(3 <= n <= 5 for n in closed.values()), closed


def test_every_community_years_projects_fit_its_allocation(demo_z: Zizhi, demo: DemoResult) -> None:
    committed: dict[tuple[str, str, int], int] = defaultdict(int)
    for p in all_projects(demo_z):
        committed[p.community_id, p.fund, p.year] += p.reserved_fen + p.spent_fen
        assert p.spent_fen + p.reserved_fen <= (p.budget_fen or 0)
        if p.state in ("completed", "rejected", "cancelled"):
            assert p.reserved_fen == 0  # closing or cancelling released what was not spent
    assert any(v > 0 for v in committed.values())
    for community in demo.places:
        for year in demo.years:
            for fund in engine.funds(demo_z, CLI, community.id, year=year):
                assert (
                    fund.reserved_fen + fund.spent_fen == committed[community.id, fund.fund, year]
                )
                assert fund.available_fen >= 0
                assert fund.allocated_fen == (
                    5_000_000
                    if fund.fund == "self_governance"
                    else 20_000_000
                    if community.kind == "urban"
                    else 0
                )


def test_some_completed_projects_returned_unspent_money(demo_z: Zizhi, demo: DemoResult) -> None:
    completed = [p for p in all_projects(demo_z) if p.state == "completed"]
    assert completed
    assert all(0 < p.spent_fen <= (p.budget_fen or 0) for p in completed)
    assert any(p.spent_fen < (p.budget_fen or 0) for p in completed)


def test_the_history_verifies_and_every_project_replays_to_its_record(
    demo_z: Zizhi, demo: DemoResult
) -> None:
    report = engine.verify(demo_z, CLI)
    assert report.ok, report.first_bad
    assert report.checked == demo.events
    for p in all_projects(demo_z):
        history = engine.project_history(demo_z, CLI, p.id)
        assert_replays_to(history, p)
        assert {fiscal_year(e.at) for e in history} == {p.year}


def test_time_never_runs_backwards_on_a_chain(demo_z: Zizhi, demo: DemoResult) -> None:
    by_chain = defaultdict(list)
    for event in engine.stream_events(demo_z, CLI, engine.EventFilter()):
        by_chain[event.chain].append((event.seq, event.at))
    for chain, moments in by_chain.items():
        in_order = [at for _, at in sorted(moments)]
        assert in_order == sorted(in_order), chain


def test_the_printed_tokens_and_passwords_sign_in_with_their_roles(
    demo_z: Zizhi, demo: DemoResult
) -> None:
    assert engine.authenticate_token(demo_z, demo.admin_token).role is Role.admin
    principals = [engine.authenticate_token(demo_z, s.token) for s in demo.sign_ins]
    assert [p.role for p in principals] == [Role.admin, Role.auditor, Role.street, Role.committee]
    assert principals[2].streets == {"金阊街道"}
    assert principals[3].communities == {"lihe"}
    user = engine.authenticate_password(demo_z, "lihe", demo.password)
    assert (user.role, user.communities) == (Role.committee, frozenset({"lihe"}))
    # Each community's work was done by its own committee's web user.
    actors = {
        e.actor
        for e in engine.stream_events(
            demo_z, CLI, engine.EventFilter(community_id="lihe", type="project.created")
        )
    }
    assert actors == {"user:lihe"}


def test_a_second_run_is_refused_and_changes_nothing(demo_z: Zizhi, demo: DemoResult) -> None:
    before = engine.verify(demo_z, CLI).checked
    with pytest.raises(AlreadyExists):
        generate(demo_z, communities=1)
    assert engine.verify(demo_z, CLI).checked == before


def test_the_same_seed_builds_the_same_district(
    fresh_z: Zizhi, demo_z: Zizhi, demo: DemoResult
) -> None:
    again = generate(fresh_z, communities=SIZE, years=YEARS, seed=SEED)
    assert again.projects == demo.projects

    def content(z: Zizhi) -> list[tuple[object, ...]]:
        return sorted(
            (p.community_id, p.workflow, p.year, p.title, p.state, p.budget_fen, p.spent_fen)
            for p in all_projects(z)
        )

    assert content(fresh_z) == content(demo_z)


def test_zizhi_demo_prints_the_admin_token_last_and_refuses_a_second_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", "demo", "--communities", "3"],
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=300,
            check=False,
            env={**os.environ, "ZIZHI_DATABASE_URL": url},
        )

    first = run()
    assert first.returncode == 0, first.stderr
    token = first.stdout.rstrip("\n").splitlines()[-1]
    assert token.startswith("zz_") and " " not in token
    assert "里河社区" in first.stdout
    db = Database(url)
    try:
        z = Zizhi(db, load_registry())
        assert engine.authenticate_token(z, token).role is Role.admin
    finally:
        db.dispose()
    second = run()
    assert second.returncode == 2
    assert "已有社区" in second.stderr
    assert second.stdout == ""
