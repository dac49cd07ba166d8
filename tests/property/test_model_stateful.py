"""Model-based test: random workflows against a small pure-Python reference model.

A hypothesis state machine opens projects in a few communities, fires their actions (right
and wrong ones), records expenses, changes allocations, cancels, and retries requests with
their Idempotency-Keys — through the engine, and in a second variant through HTTP. Every
answer is checked against the model's prediction, and after every step:

* reserved + spent <= allocated, and every balance equals the model's;
* every balance equals the sum of its ledger entries;
* a project's money equals the model's, and its spent never exceeds its budget;
* the touched project's history replays to its current state;
* the whole history chain and ledger verify.

Each run gets a database of its own. ``--hypothesis-profile=soak`` runs far more of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import engine
from api.app import create_app
from engine.model import CLI, fiscal_year
from engine.store.tables import ledger_entries
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import VOTE
from tests.property.drivers import Driver, EngineDriver, HttpDriver, Outcome
from tests.property.examples import share_of_examples

OPEN = {"planning", "review", "street_review", "implementation", "evaluation", "feedback"}
DEFAULTS = {"self_governance": 5_000_000, "party_service": 20_000_000}
FLOOR = {"self_governance": 0, "party_service": 20_000_000}  # urban; villages have none
RESERVING = {"self_governance": "approve", "party_service": "street_approve"}


@dataclass
class Project:
    id: int
    community: str
    workflow: str
    state: str = "planning"
    budget: int | None = None
    reserved: int = 0
    spent: int = 0


@dataclass
class Model:
    allocated: dict[tuple[str, str], int] = field(default_factory=dict)
    projects: dict[int, Project] = field(default_factory=dict)

    def used(self, community: str, fund: str) -> tuple[int, int]:
        mine = [p for p in self.projects.values() if (p.community, p.workflow) == (community, fund)]
        return sum(p.reserved for p in mine), sum(p.spent for p in mine)

    def available(self, community: str, fund: str) -> int:
        reserved, spent = self.used(community, fund)
        return self.allocated[(community, fund)] - reserved - spent


# Mostly plans that fit a community's ¥50,000, sometimes ones that cannot.
BUDGETS = st.one_of(st.integers(1, 2_000_000), st.integers(1, 25_000_000))
NEXT = {
    (workflow, state): action
    for workflow in ("self_governance", "party_service")
    for state, action in {
        "planning": "submit_plan",
        "review": "approve",
        "street_review": "street_approve",
        "implementation": "complete_implementation",
        "evaluation": "evaluate",
        "feedback": "close",
    }.items()
}

# What each action does in the model: (from states, to state, effect)
STEPS: dict[str, tuple[set[str], str, str | None]] = {
    "submit_plan": ({"planning"}, "review", "budget"),
    "return_for_revision": ({"review", "street_review"}, "planning", None),
    "approve": ({"review"}, "?", None),  # implementation or street_review, by workflow
    "street_approve": ({"street_review"}, "implementation", "reserve"),
    "complete_implementation": ({"implementation"}, "evaluation", None),
    "rectify": ({"evaluation"}, "implementation", None),
    "evaluate": ({"evaluation"}, "feedback", None),
    "close": ({"feedback"}, "completed", "release"),
    "reject": ({"review"}, "rejected", None),
    "cancel": (set(), "cancelled", "release"),
}
FIELDS: dict[str, dict[str, Any]] = {
    "return_for_revision": {"reason": "重做"},
    "approve": VOTE,
    "street_approve": {},
    "complete_implementation": {"report": "完成"},
    "rectify": {"issues": "整改"},
    "evaluate": {"score": 4, "report": "良好"},
    "close": {"notice": "办结", "satisfied": 9, "unsatisfied": 1},
    "reject": {"reason": "不予立项"},
    "cancel": {"reason": "撤销"},
}


class ZizhiMachine(RuleBasedStateMachine):
    projects = Bundle("projects")

    def __init__(self, z: Zizhi, driver: Driver, client: TestClient | None) -> None:
        super().__init__()
        self.z, self.driver, self.client = z, driver, client
        self.model = Model()
        self.year = fiscal_year(self.z.clock())
        self.communities: list[str] = []
        self.touched: int | None = None
        self.answers: dict[str, tuple[Outcome, tuple[Any, ...]]] = {}  # key → first answer
        self.invoices = 0

    @initialize()
    def places(self) -> None:
        for n, kind in enumerate(("urban", "urban", "rural")):
            community = f"m{n}"
            self.driver.community(community, kind)
            self.communities.append(community)
            self.model.allocated[(community, "self_governance")] = DEFAULTS["self_governance"]
            self.model.allocated[(community, "party_service")] = (
                DEFAULTS["party_service"] if kind == "urban" else 0
            )

    @rule(
        target=projects,
        community=st.integers(0, 2),
        workflow=st.sampled_from(["self_governance", "party_service"]),
    )
    def open_project(self, community: int, workflow: str) -> int:
        place = self.communities[community]
        project_id = self.driver.open(place, workflow)
        self.driver.advance(project_id, workflow, "demand_collection", "planning")
        self.model.projects[project_id] = Project(project_id, place, workflow)
        self.touched = project_id
        return project_id

    @rule(project=projects, budget=BUDGETS, steps=st.integers(1, 4), key=st.booleans())
    def advance(self, project: int, budget: int, steps: int, key: bool) -> None:
        """The next steps of the project's happy path (random actions alone rarely get far)."""
        p = self.model.projects[project]
        for _ in range(steps):
            following = NEXT.get((p.workflow, p.state))
            if following == "submit_plan":
                self.submit_plan(project, budget, key)
            elif following is not None:
                self.act(project, following, key)

    @rule(project=projects, budget=BUDGETS, key=st.booleans())
    def submit_plan(self, project: int, budget: int, key: bool) -> None:
        p = self.model.projects[project]
        expected = self._expect(p, "submit_plan")
        if expected is None and budget > self.model.available(p.community, p.workflow):
            expected = "fund_cap_exceeded"
        got = self._fire(p, "submit_plan", {"budget_fen": budget, "plan": "方案"}, key)
        assert got.code == expected, (got, p)
        if expected is None:
            p.state, p.budget = "review", budget

    @rule(project=projects, action=st.sampled_from(sorted(FIELDS)), key=st.booleans())
    def act(self, project: int, action: str, key: bool) -> None:
        p = self.model.projects[project]
        expected = self._expect(p, action)
        reserving = action == RESERVING[p.workflow]
        if (
            expected is None
            and reserving
            and (p.budget or 0) > self.model.available(p.community, p.workflow)
        ):
            expected = "fund_cap_exceeded"
        got = self._fire(p, action, FIELDS[action], key, street=action == "street_approve")
        assert got.code == expected, (action, got, p)
        if expected is not None:
            return
        if reserving:
            p.reserved = p.budget or 0
        if STEPS[action][2] == "release":
            p.reserved = 0
        p.state = self._target(p, action)
        if got.body is not None:
            assert (got.body["state"], got.body["reserved_fen"]) == (p.state, p.reserved)

    @rule(project=projects, amount=st.integers(1, 3_000_000), key=st.booleans())
    def expense(self, project: int, amount: int, key: bool) -> None:
        p = self.model.projects[project]
        self.invoices += 1
        data = {
            "amount_fen": amount,
            "payee": "供应商",
            "invoice_no": f"I{self.invoices}",
            "description": "材料",
        }
        expected = None
        if p.state != "implementation":
            expected = "action_not_allowed"
        elif amount > p.reserved:
            expected = "fund_cap_exceeded"
        got = self._send(("expense", p.id, data), key, lambda k: self.driver.expense(p.id, data, k))
        self.touched = p.id
        assert got.code == expected, (got, p, amount)
        if expected is None:
            p.reserved -= amount
            p.spent += amount

    @precondition(
        lambda self: any(p.state == "implementation" for p in self.model.projects.values())
    )
    @rule(data=st.data(), key=st.booleans())
    def spend(self, data: st.DataObject, key: bool) -> None:
        """An expense on a project that can spend: around what it has left, often over it."""
        running = sorted(i for i, p in self.model.projects.items() if p.state == "implementation")
        project = data.draw(st.sampled_from(running))
        left = self.model.projects[project].reserved
        self.expense(project, data.draw(st.integers(1, max(1, left + left // 4 + 1))), key)

    @rule(
        community=st.integers(0, 2),
        fund=st.sampled_from(sorted(DEFAULTS)),
        amount=st.integers(0, 25_000_000),
    )
    def allocate(self, community: int, fund: str, amount: int) -> None:
        place = self.communities[community]
        reserved, spent = self.model.used(place, fund)
        # The policy floor first: an urban community's party-service money (communities 0
        # and 1 are urban) is never set below ¥200,000.
        floor = FLOOR[fund] if community < 2 else 0
        expected = "fund_cap_exceeded" if amount < reserved + spent else None
        expected = "validation_error" if amount < floor else expected
        got = self.driver.allocate(place, fund, self.year, amount)
        assert got.code == expected, (got, reserved, spent, amount)
        if expected is None:
            self.model.allocated[(place, fund)] = amount

    @precondition(lambda self: bool(self.answers))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """The same request with the same key: the first answer again, nothing done twice."""
        key = data.draw(st.sampled_from(sorted(self.answers)))
        first, request = self.answers[key]
        before = self._snapshot()
        again = self._replay(request, key)
        assert again == first
        assert self._snapshot() == before

    @precondition(lambda self: bool(self.answers))
    @rule(data=st.data())
    def reuse_key_for_another_request(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.answers)))
        _, request = self.answers[key]
        # The same sender and endpoint, another body: keys belong to whoever sent them.
        if request[0] == "expense":
            other = (*request[:2], {**request[2], "description": "另一个请求"})
        else:
            other = (*request[:3], {**request[3], "note": "另一个请求"}, request[4])
        before = self._snapshot()
        got = self._replay(other, key)
        assert got.code == "idempotency_conflict"
        assert self._snapshot() == before

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()
        self.z.db.dispose()

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def balances_agree(self) -> None:
        for place in self.communities:
            funds = self.driver.funds(place, self.year)
            for fund in DEFAULTS:
                reserved, spent = self.model.used(place, fund)
                f = funds[fund]
                assert (f["allocated_fen"], f["reserved_fen"], f["spent_fen"]) == (
                    self.model.allocated[(place, fund)],
                    reserved,
                    spent,
                )
                assert f["reserved_fen"] + f["spent_fen"] <= f["allocated_fen"]
        self._entries_sum_to_balances()

    @invariant()
    def touched_project_agrees_and_replays(self) -> None:
        if self.touched is None:
            return
        p = self.model.projects.get(self.touched)
        actual = self.driver.project(self.touched)
        if p is not None:
            assert (actual["state"], actual["reserved_fen"], actual["spent_fen"]) == (
                p.state,
                p.reserved,
                p.spent,
            )
            assert actual["spent_fen"] <= (actual["budget_fen"] or 0)
        replayed = engine.replay_project(engine.project_history(self.z, CLI, self.touched))
        assert (replayed.state, replayed.version, replayed.reserved_fen, replayed.spent_fen) == (
            actual["state"],
            actual["version"],
            actual["reserved_fen"],
            actual["spent_fen"],
        )

    @invariant()
    def history_verifies(self) -> None:
        report = engine.verify(self.z, CLI)
        assert report.ok, report.first_bad

    # --- helpers ---------------------------------------------------------------------------

    def _expect(self, p: Project, action: str) -> str | None:
        sources = STEPS[action][0] or OPEN
        if action == "street_approve" and p.workflow != "party_service":
            return "validation_error"  # not an action of this workflow
        if p.state not in sources:
            return "action_not_allowed"
        return None

    @staticmethod
    def _target(p: Project, action: str) -> str:
        if action == "approve":
            return "implementation" if p.workflow == "self_governance" else "street_review"
        return STEPS[action][1]

    def _fire(
        self, p: Project, action: str, data: dict[str, Any], key: bool, street: bool = False
    ) -> Outcome:
        self.touched = p.id
        return self._send(
            ("fire", p.id, action, data, street),
            key,
            lambda k: self.driver.fire(p.id, action, data, street=street, key=k),
        )

    def _send(self, request: tuple[Any, ...], key: bool, call: Any) -> Outcome:
        name = f"k{len(self.answers)}" if key else None
        got: Outcome = call(name)
        if name is not None and got.code is None:  # only answers that did something stay
            self.answers[name] = (got, request)
        return got

    def _replay(self, request: tuple[Any, ...], key: str) -> Outcome:
        if request[0] == "expense":
            return self.driver.expense(request[1], request[2], key)
        _, project_id, action, data, street = request
        return self.driver.fire(project_id, action, data, street=street, key=key)

    def _snapshot(self) -> tuple[Any, ...]:
        with self.z.read() as conn:
            counts = tuple(
                conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("events", "ledger_entries", "expenses")
            )
        return counts, tuple(
            sorted((pid, self.driver.project(pid)["version"]) for pid in self.model.projects)
        )

    def _entries_sum_to_balances(self) -> None:
        e = ledger_entries.c
        with self.z.read() as conn:
            rows = conn.execute(
                sa.select(e.community_id, e.fund, e.kind, sa.func.sum(e.amount_fen)).group_by(
                    e.community_id, e.fund, e.kind
                )
            ).all()
        sums: dict[tuple[str, str], dict[str, int]] = {}
        for community, fund, kind, total in rows:
            sums.setdefault((community, fund), {})[kind] = int(total)
        for (community, fund), by_kind in sums.items():
            f = self.driver.funds(community, self.year)[fund]
            spent = by_kind.get("spend", 0)
            assert (
                by_kind.get("allocate", 0),
                by_kind.get("reserve", 0) - spent - by_kind.get("release", 0),
                spent,
            ) == (f["allocated_fen"], f["reserved_fen"], f["spent_fen"])


def _runs() -> settings:
    # Each run builds a database of its own, so it gets a tenth of the profile's examples.
    return settings(max_examples=share_of_examples(10, at_least=3))


@pytest.fixture
def fresh_databases(backend: str, databases: DatabaseFactory) -> Iterator[Any]:
    yield lambda: databases.new(backend)


@pytest.mark.parametrize("variant", ["engine", "http"])
def test_zizhi_agrees_with_the_reference_model(
    variant: str, fresh_databases: Any, registry: Any
) -> None:
    def machine() -> ZizhiMachine:
        z = Zizhi(fresh_databases(), registry)
        client = TestClient(create_app(z)) if variant == "http" else None
        driver = EngineDriver(z) if client is None else HttpDriver(z, client)
        return ZizhiMachine(z, driver, client)

    # Hypothesis runs any factory of machines; its annotation names the class only.
    run_state_machine_as_test(machine, settings=_runs())  # type: ignore[arg-type]
