"""The ledger against a reference model: random sequences of approvals, expenses, closes,
cancellations and allocation changes, every answer and every balance checked.

Each example runs in a community of its own, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.errors import FundCapExceeded
from engine.model import CLI
from engine.store.tables import ledger_entries
from engine.store.uow import Zizhi
from tests.factories import VOTE, World
from tests.property.examples import share_of_examples

YEAR_FUND = "self_governance"


@dataclass
class ModelProject:
    id: int
    budget: int
    state: str = "review"
    reserved: int = 0
    spent: int = 0


@dataclass
class Model:
    allocated: int = 5_000_000
    projects: list[ModelProject] = field(default_factory=list)

    @property
    def reserved(self) -> int:
        return sum(p.reserved for p in self.projects)

    @property
    def spent(self) -> int:
        return sum(p.spent for p in self.projects)

    @property
    def available(self) -> int:
        return self.allocated - self.reserved - self.spent


amounts = st.integers(1, 3_000_000)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("open"), amounts),
        st.tuples(st.just("approve"), st.integers(0, 7)),
        st.tuples(st.just("expense"), st.integers(0, 7), st.integers(1, 2_000_000)),
        st.tuples(st.just("close"), st.integers(0, 7)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("allocate"), st.integers(0, 8_000_000)),
    ),
    min_size=1,
    max_size=14,
)
# Start with a few plans in review, so most steps have something to act on.
scenarios = st.tuples(
    st.lists(st.tuples(st.just("open"), amounts), min_size=1, max_size=4), ops
).map(lambda parts: parts[0] + parts[1])


@settings(max_examples=share_of_examples(4))
@given(scenarios)
def test_the_ledger_agrees_with_a_reference_model(z: Zizhi, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    world = World(z)
    community = world.community()
    committee = world.committee(community)
    model = Model()
    year = 0
    invoice = 0
    for step in steps:
        kind = step[0]
        if kind == "open":
            budget = step[1]
            project = world.advance(
                world.project(community, committee=committee), "planning", committee=committee
            )
            year = project.year
            try:
                engine.fire(
                    z, committee, project.id, "submit_plan", {"budget_fen": budget, "plan": "方案"}
                )
            except FundCapExceeded:
                assert budget > model.available
                continue
            assert budget <= model.available
            model.projects.append(ModelProject(project.id, budget))
            continue
        if kind == "allocate":
            if not year:
                continue
            wanted = step[1]
            try:
                engine.set_allocation(z, CLI, community, YEAR_FUND, year, wanted)
            except FundCapExceeded:
                assert wanted < model.reserved + model.spent
            else:
                assert wanted >= model.reserved + model.spent
                model.allocated = wanted
            continue
        if not model.projects:
            continue
        target = model.projects[step[1] % len(model.projects)]
        if kind == "approve" and target.state == "review":
            try:
                engine.fire(z, committee, target.id, "approve", VOTE)
            except FundCapExceeded:
                assert target.budget > model.available
            else:
                assert target.budget <= model.available
                target.state, target.reserved = "implementation", target.budget
        elif kind == "expense" and target.state == "implementation":
            amount = step[2]
            invoice += 1
            try:
                engine.record_expense(
                    z,
                    committee,
                    target.id,
                    {
                        "amount_fen": amount,
                        "payee": "供应商",
                        "invoice_no": str(invoice),
                        "description": "材料",
                    },
                )
            except FundCapExceeded:
                assert amount > target.reserved
            else:
                assert amount <= target.reserved
                target.reserved -= amount
                target.spent += amount
        elif kind == "close" and target.state == "implementation":
            current = engine.get_project(z, committee, target.id)
            world.advance(current, "completed", committee=committee)
            target.state, target.reserved = "completed", 0
        elif kind == "cancel" and target.state in ("review", "implementation"):
            engine.fire(z, committee, target.id, "cancel", {"reason": "撤销"})
            target.state, target.reserved = "cancelled", 0
        _check(z, community, year, model)
    _check(z, community, year, model)


def _check(z: Zizhi, community: str, year: int, model: Model) -> None:
    if not year:
        return
    fund = engine.funds(z, CLI, community, year=year)[0]
    assert (fund.allocated_fen, fund.reserved_fen, fund.spent_fen) == (
        model.allocated,
        model.reserved,
        model.spent,
    )
    assert fund.reserved_fen + fund.spent_fen <= fund.allocated_fen
    with z.read() as conn:
        sums = dict(
            conn.execute(
                sa.select(ledger_entries.c.kind, sa.func.sum(ledger_entries.c.amount_fen))
                .where(
                    ledger_entries.c.community_id == community,
                    ledger_entries.c.fund == YEAR_FUND,
                    ledger_entries.c.year == year,
                )
                .group_by(ledger_entries.c.kind)
            ).all()
        )
    if not sums:  # not opened yet: the view shows the default allocation, untouched
        assert (fund.allocated_fen, fund.reserved_fen) == (5_000_000, 0)
        return
    allocated = sums.get("allocate", 0)
    spent = sums.get("spend", 0)
    reserved = sums.get("reserve", 0) - spent - sums.get("release", 0)
    assert (allocated, reserved, spent) == (fund.allocated_fen, fund.reserved_fen, fund.spent_fen)
    for p in model.projects:
        actual = engine.get_project(z, CLI, p.id)
        assert (actual.state, actual.reserved_fen, actual.spent_fen) == (
            p.state,
            p.reserved,
            p.spent,
        )
        assert actual.spent_fen <= (actual.budget_fen or 0)
