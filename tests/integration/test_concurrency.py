"""Concurrent requests on real threads against a real database: the ledger holds every cap.

On PostgreSQL the racers really run in parallel (one connection each); on SQLite they queue
for the in-process write lock. Either way exactly as many win as the money allows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import sqlalchemy as sa

import engine
from engine.errors import FundCapExceeded
from engine.model import CLI, ProjectRecord
from engine.store.history import ChainWriter
from engine.store.ledger import Ledger
from engine.store.tables import ledger_entries, projects
from engine.store.uow import Zizhi
from tests.concurrency import race
from tests.factories import VOTE, World, new_id


def _winners(results: list[object]) -> int:
    refused = [r for r in results if isinstance(r, FundCapExceeded)]
    others = [r for r in results if isinstance(r, Exception) and r not in refused]
    assert not others, others
    return len(results) - len(refused)


def _allocate_entries(z: Zizhi, community: str) -> int:
    with z.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(ledger_entries)
                .where(
                    ledger_entries.c.community_id == community, ledger_entries.c.kind == "allocate"
                )
            ).scalar_one()
        )


def test_eight_approvals_racing_for_a_fund_that_fits_five_let_exactly_five_win(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    review = [
        world.advance(world.project(community), "review", budget_fen=1_000_000) for _ in range(8)
    ]
    engine.set_allocation(z, CLI, community, "self_governance", review[0].year, 5_000_000)
    results = race([partial(engine.fire, z, committee, p.id, "approve", VOTE) for p in review])
    assert _winners(results) == 5
    fund = engine.funds(z, CLI, community)[0]
    assert (fund.reserved_fen, fund.spent_fen, fund.available_fen) == (5_000_000, 0, 0)
    states = sorted(engine.get_project(z, CLI, p.id).state for p in review)
    assert states == ["implementation"] * 5 + ["review"] * 3


def test_racing_the_first_use_of_a_fresh_community_year_opens_its_account_once(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    committee = world.committee(community)
    review = [
        world.advance(world.project(community), "review", budget_fen=1_000_000) for _ in range(8)
    ]
    assert _allocate_entries(z, community) == 0  # nothing has touched the ledger yet
    results = race([partial(engine.fire, z, committee, p.id, "approve", VOTE) for p in review])
    assert _winners(results) == 5  # the default ¥50,000 fits five plans of ¥10,000
    assert _allocate_entries(z, community) == 1
    fund = engine.funds(z, CLI, community)[0]
    assert (fund.allocated_fen, fund.reserved_fen) == (5_000_000, 5_000_000)


def test_racing_expenses_never_overdraw_one_reservation(world: World, z: Zizhi) -> None:
    community = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community), "implementation", budget_fen=1_000_000)
    results = race(
        [
            partial(
                engine.record_expense,
                z,
                committee,
                project.id,
                {
                    "amount_fen": 200_000,
                    "payee": "施工队",
                    "invoice_no": f"R{n}",
                    "description": "材料",
                },
            )
            for n in range(8)
        ]
    )
    assert _winners(results) == 5
    done = engine.get_project(z, CLI, project.id)
    assert (done.reserved_fen, done.spent_fen) == (0, 1_000_000)


def test_the_conditional_update_alone_holds_the_cap_without_any_chain_lock(
    fresh_z: Zizhi,
) -> None:
    """Each racer appends to a chain of its own, so only the account row stands between them.

    The racers reserve past the engine (the projects' rows stay as they were), which verify
    rightly calls a fault: so on a database of this test's own, not the shared one."""
    z, world = fresh_z, World(fresh_z)
    community = world.community()
    review = [
        world.advance(world.project(community), "review", budget_fen=1_000_000) for _ in range(8)
    ]

    def reserve(project_id: int) -> None:
        with z.db.write() as conn:
            at = z.clock()
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).one()
            chain = ChainWriter(conn, new_id("race-"), CLI.actor, at)
            Ledger(conn, chain, z.policy, at).reserve(ProjectRecord.from_row(row), 1_000_000, 0)
            chain.flush()
            conn.commit()

    results = race([partial(reserve, p.id) for p in review])
    assert _winners(results) == 5
    assert _allocate_entries(z, community) == 1
    assert engine.funds(z, CLI, community)[0].reserved_fen == 5_000_000


def test_racing_approvals_leave_a_history_and_ledger_that_verify(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    communities = [world.community() for _ in range(3)]
    review = [
        world.advance(world.project(c), "review", budget_fen=2_000_000)
        for c in communities
        for _ in range(4)
    ]
    race(
        [
            partial(engine.fire, fresh_z, world.committee(p.community_id), p.id, "approve", VOTE)
            for p in review
        ]
    )
    report = engine.verify(fresh_z, CLI)
    assert report.ok, report.first_bad


@contextmanager
def community_held(z: Zizhi, community: str) -> Iterator[threading.Event]:
    """Another writer holds the community's chain until the yielded event is set."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with z.change(CLI, chain=community):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(30)


def test_writers_in_different_communities_do_not_wait_for_each_other(
    world: World, z: Zizhi, backend: str
) -> None:
    """PostgreSQL locks one chain row per community; SQLite has one writer at a time."""
    busy, other = world.community(), world.community()
    project = world.project(other)
    finished = threading.Event()

    def cancel() -> None:
        engine.fire(z, world.committee(other), project.id, "cancel", {"reason": "测试"})
        finished.set()

    with community_held(z, busy) as release:
        writer = threading.Thread(target=cancel)
        writer.start()
        blocked = not finished.wait(2)
        release.set()
        writer.join(30)
    assert finished.is_set()
    assert blocked is (backend == "sqlite")


def test_writers_in_one_community_take_turns(world: World, z: Zizhi) -> None:
    community = world.community()
    project = world.project(community)
    with community_held(z, community) as release:
        threading.Timer(1.0, release.set).start()
        engine.fire(z, world.committee(community), project.id, "cancel", {"reason": "测试"})
        assert release.is_set()  # it waited for the holder to finish, and then it succeeded


def test_a_fresh_community_years_allocation_set_concurrently_ends_consistent(
    world: World, z: Zizhi
) -> None:
    community = world.community()
    results = race(
        [
            partial(engine.set_allocation, z, CLI, community, "party_service", 2032, 30_000_000 + n)
            for n in range(8)
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)]
    final = engine.funds(z, CLI, community, year=2032)[1].allocated_fen
    lines = engine.statement(z, CLI, community, "party_service", 2032).items
    assert sum(line.amount_fen for line in lines) == final
    assert lines[-1].allocated_fen == final


def test_the_home_page_shows_one_moment_while_approvals_reserve(fresh_z: Zizhi) -> None:
    """The committee's overview (funds and projects, read by several use cases) agrees with
    itself while another thread approves projects: what the fund shows as reserved is what
    the projects listed beside it hold."""
    world = World(fresh_z)
    community = world.community()
    committee = world.committee(community)
    waiting = [
        world.advance(world.project(community), "review", budget_fen=1_000) for _ in range(40)
    ]
    done, stop = threading.Event(), threading.Event()

    def approve_all() -> None:
        try:
            for project in waiting:
                if not stop.is_set():
                    engine.fire(fresh_z, committee, project.id, "approve", VOTE)
        finally:
            done.set()

    writer = threading.Thread(target=approve_all)
    writer.start()
    looks = 0
    try:
        while not done.is_set() or looks < 3:
            (mine,) = engine.overview(fresh_z, committee).communities
            listed = [p for group in mine.steps for p in group.projects]
            for fund in mine.funds:
                held = [p for p in listed if p.fund == fund.fund]
                assert fund.reserved_fen == sum(p.reserved_fen for p in held), looks
                assert fund.spent_fen == sum(p.spent_fen for p in held), looks
            looks += 1
    finally:
        stop.set()
        writer.join()
    (mine,) = engine.overview(fresh_z, committee).communities
    assert sum(p.state == "implementation" for g in mine.steps for p in g.projects) == 40
    assert looks > 3  # the overview was read while the approvals went on
