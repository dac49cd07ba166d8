"""The demo district's plan: pure and seeded, nothing touches the database here.

For each year: which projects each community runs, the state each one ends the year in,
budgets that together fit the community's allocation, and every change each project goes
through, in order, stamped with a moment of that year (``at``, in office minutes from New
Year's morning). ``demo.district`` then carries the changes out through the engine.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from demo import content
from engine import FISCAL_TZ, AllocationPolicy, Workflow, WorkflowRegistry

# The workflows the demo plans projects on, in the order it plans them.
WORKFLOWS = ("self_governance", "party_service")
# How this year's projects beyond the first in each state are spread: a mid-year picture.
CURRENT_WEIGHTS = {
    "demand_collection": 8,
    "screening": 6,
    "planning": 9,
    "review": 8,
    "street_review": 6,
    "implementation": 18,
    "evaluation": 8,
    "feedback": 6,
    "completed": 25,
    "rejected": 3,
    "cancelled": 3,
}
# Budget of one project, in fen: ¥3,000–¥25,000 and ¥10,000–¥180,000.
BUDGET_RANGE = {"self_governance": (300_000, 2_500_000), "party_service": (1_000_000, 18_000_000)}
MIN_FUND_FEN = 1_000_000  # a fund smaller than ¥10,000 a year gets no demo projects
# Days between a project's change and the one before it, by action or kind of change.
GAP_DAYS = {
    "pool": (0, 0),
    "open": (2, 10),
    "demand": (0, 4),
    "link": (0, 2),
    "close_collection": (5, 20),
    "accept": (2, 7),
    "submit_plan": (5, 18),
    "return_for_revision": (3, 10),
    "approve": (3, 10),
    "street_approve": (3, 12),
    "expense": (4, 25),
    "complete_implementation": (3, 10),
    "rectify": (5, 12),
    "evaluate": (5, 15),
    "close": (3, 10),
    "reject": (2, 10),
    "cancel": (3, 20),
    "self_manage": (15, 60),
}
WORKDAY = 540  # planned moments are office minutes, 08:30–17:30 each day
FIRST_DAY, START_BY, LAST_DAY = 3, 200, 355  # projects start Jan 4–Jul 20, end by Dec 22


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    name: str
    street: str
    kind: str  # urban 社区 | rural 村

    @property
    def committee_name(self) -> str:
        return f"{self.name}{'村委会' if self.kind == 'rural' else '居委会'}"


def district(size: int = 168) -> list[Place]:
    """The first ``size`` communities, taken from the streets in turn (里河社区 first)."""
    streets = [
        [Place(cid, name, street, kind) for cid, name, kind in rows]
        for street, _, rows in content.STREETS
    ]
    order = [p for group in itertools.zip_longest(*streets) for p in group if p is not None]
    if not 1 <= size <= len(order):
        raise ValueError(f"a demo district has 1 to {len(order)} communities")
    return order[:size]


def street_username(street: str) -> str:
    return next(f"{pinyin}-jiedao" for name, pinyin, _ in content.STREETS if name == street)


# --- the plan ------------------------------------------------------------------------------


def way_forward(wf: Workflow) -> list[str]:
    """The states a project passes on its way to ``completed``, by the fewest actions: the
    workflow's main path, read from its definition (breadth first over its actions)."""
    came_from: dict[str, str | None] = {wf.initial: None}
    frontier = [wf.initial]
    while frontier and "completed" not in came_from:
        reached = []
        for source in frontier:
            for action in wf.actions.values():
                if source in action.sources and action.dest not in came_from:
                    came_from[action.dest] = source
                    reached.append(action.dest)
        frontier = reached
    path: list[str] = []
    state = came_from["completed"]
    while state is not None:
        path.append(state)
        state = came_from[state]
    return path[::-1]


def final_states(wf: Workflow) -> list[str]:
    return [s.name for s in wf.states.values() if s.final]


@dataclass(eq=False, slots=True)
class ProjectPlan:
    place: Place
    workflow: str
    idea: content.Idea
    title: str
    outcome: str = "completed"  # completed | open | rejected | cancelled
    stop: str | None = None  # the state it stays in, or is rejected or cancelled from
    budget: int = 0
    spent: int = 0
    path: list[str] = field(default_factory=list)  # its workflow's way forward
    held_back: list[dict[str, Any]] = field(default_factory=list)  # paid after rectifying
    id: int = 0  # known once opened
    pool_demand_id: int = 0  # known once a resident's demand is in the pool
    current: bool = False  # a project of the year under way (told in full detail)

    @property
    def final_state(self) -> str:
        return self.stop if self.outcome == "open" and self.stop else self.outcome

    def passes(self, state: str) -> bool:
        """Whether the project moves on out of ``state``."""
        path = self.path
        return self.stop is None or path.index(self.stop) > path.index(state)


@dataclass(slots=True)
class Op:
    """One planned change; ``at`` counts office minutes from the start of its year."""

    at: float
    place: Place
    project: ProjectPlan | None
    kind: str  # pool | open | link | demand | expense | fire | self_manage
    action: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    by_street: bool = False


class _Steps:
    """A project's changes in order, each some days after the one before."""

    def __init__(self, rng: random.Random, project: ProjectPlan, start: float) -> None:
        self.rng, self.project, self.ops = rng, project, list[Op]()
        self._at = start

    def add(
        self,
        kind: str,
        action: str = "",
        data: dict[str, Any] | None = None,
        *,
        by_street: bool = False,
    ) -> None:
        low, high = GAP_DAYS[action or kind]
        self._at += self.rng.randint(low, high) * WORKDAY + self.rng.uniform(5, 240)
        self.ops.append(
            Op(self._at, self.project.place, self.project, kind, action, data or {}, by_street)
        )

    def fire(self, action: str, data: dict[str, Any], *, by_street: bool = False) -> None:
        self.add("fire", action, data, by_street=by_street)

    def fit_before(self, last: float) -> None:
        """Squeeze the changes so the last falls by ``last``, keeping their order."""
        start, end = self.ops[0].at, self.ops[-1].at
        if end > last:
            for op in self.ops:
                op.at = start + (op.at - start) * (last - start) / (end - start)


class Planner:
    """Plans year after year from one seeded ``random.Random``, so a seed repeats a district."""

    def __init__(
        self, rng: random.Random, policy: AllocationPolicy, workflows: WorkflowRegistry
    ) -> None:
        self.rng = rng
        self.policy = policy
        self.workflows = {name: workflows.latest(name) for name in WORKFLOWS}
        self.paths = {name: way_forward(wf) for name, wf in self.workflows.items()}
        self.projects = 0
        self._invoices = itertools.count(1)

    def year(self, chosen: Sequence[Place], *, current: bool) -> list[Op]:
        """One year's changes in the order they happen; ``current``: spread over the steps."""
        # The database is empty, so every allocation is still the policy's default.
        funded = {
            (p.id, name): self.policy.default_fen(wf.fund, p.kind)
            for p in chosen
            for name, wf in self.workflows.items()
        }
        plans: list[ProjectPlan] = []
        for place in chosen:
            plans += self._community_year(place, funded, current)
        if current:
            self._spread_over_states(plans, chosen, funded)
        for (community_id, wf), cap in funded.items():
            self._set_budgets(
                [
                    p
                    for p in plans
                    if p.place.id == community_id and p.workflow == wf and p.passes("planning")
                ],
                cap,
            )
        ops = [op for p in plans for op in self._project_ops(p, current)]
        if current:  # residents' demands waiting in the pool for next projects
            for place in chosen:
                for _ in range(self.rng.randint(1, 2)):
                    idea = self.rng.choice(content.ideas_for(place.kind))
                    ops.append(
                        Op(
                            self.rng.uniform(0, START_BY * WORKDAY),
                            place,
                            None,
                            "pool",
                            data=self._demand(idea, contact=True),
                        )
                    )
        self.projects += len(plans)
        return [op for _, op in sorted(enumerate(ops), key=lambda iop: (iop[1].at, iop[0]))]

    def _community_year(
        self, place: Place, funded: dict[tuple[str, str], int], current: bool
    ) -> list[ProjectPlan]:
        rng, plans = self.rng, list[ProjectPlan]()
        # A finished year closes 3–5 matters per community in all (the source's figure):
        # most urban communities' one party-service project is among them.
        party = funded[place.id, "party_service"] >= MIN_FUND_FEN and rng.random() < 0.7
        for wf in ("self_governance", "party_service"):
            if funded[place.id, wf] < MIN_FUND_FEN:
                continue
            if current:
                fewest, most = (3, 5) if wf == "self_governance" else (1, 3)
            elif wf == "self_governance":
                fewest, most = (3, 4) if party else (3, 5)
            elif party:
                fewest, most = 1, 1
            else:
                continue
            closing = rng.randint(fewest, most)
            failed = 1 if not current and rng.random() < 0.3 else 0
            for i in range(closing + failed):
                plan = self._new_project(place, wf, plans)
                if i >= closing:  # a past year's project that did not make it
                    plan.outcome, plan.stop = self._aim(rng.choice(["rejected", "cancelled"]), wf)
                plans.append(plan)
        return plans

    def _new_project(self, place: Place, workflow: str, taken: list[ProjectPlan]) -> ProjectPlan:
        ideas = content.ideas_for(place.kind, party=workflow == "party_service")
        used = Counter(p.idea.key for p in taken)
        idea = self.rng.choice([i for i in ideas if not used[i.key]] or ideas)
        title = self.rng.choice(idea.titles)
        if used[idea.key]:
            title += f"（{used[idea.key] + 1}期）"
        return ProjectPlan(place, workflow, idea, title, path=self.paths[workflow])

    def _spread_over_states(
        self, plans: list[ProjectPlan], chosen: Sequence[Place], funded: dict[tuple[str, str], int]
    ) -> None:
        """This year: one project in every state of each workflow first, the rest weighted.

        A small demo gets extra projects until each workflow has as many as it has states.
        """
        for wf, path in self.paths.items():
            states = path + final_states(self.workflows[wf])
            mine = [p for p in plans if p.workflow == wf]
            eligible = [p for p in chosen if funded[p.id, wf] >= MIN_FUND_FEN]
            missing = max(0, len(states) - len(mine)) if eligible else 0
            for place in itertools.islice(itertools.cycle(eligible), missing):
                mine.append(self._new_project(place, wf, [p for p in plans if p.place is place]))
                plans.append(mine[-1])
            targets = self.rng.sample(states, len(states)) + self.rng.choices(
                states, [CURRENT_WEIGHTS[s] for s in states], k=max(0, len(mine) - len(states))
            )
            # Without a funded community there are more states than projects: zip stops early.
            for plan, target in zip(self.rng.sample(mine, len(mine)), targets, strict=False):
                plan.outcome, plan.stop = self._aim(target, wf)

    def _aim(self, target: str, workflow: str) -> tuple[str, str | None]:
        if target == "completed":
            return "completed", None
        if target == "rejected":
            return "rejected", self.rng.choice(["screening", "review"])
        if target == "cancelled":
            early = [s for s in self.paths[workflow] if s not in ("evaluation", "feedback")]
            return "cancelled", self.rng.choice(early)
        return "open", target

    def _set_budgets(self, plans: list[ProjectPlan], cap: int) -> None:
        """Budgets in whole hundreds of yuan that together stay within the allocation.

        Fitting them all up front is what lets every plan pass ``budget_within_available``
        and every approval reserve its money, in whatever order the year runs them.
        """
        if not plans:
            return
        low, high = BUDGET_RANGE[plans[0].workflow]
        low = min(low, cap // len(plans) // 10_000 * 10_000)
        total = cap * self.rng.uniform(0.7, 0.97)
        weights = [self.rng.uniform(0.5, 1.5) for _ in plans]
        budgets = [
            max(low, min(high, int(total * w / sum(weights)) // 10_000 * 10_000)) for w in weights
        ]
        while (excess := sum(budgets) - cap) > 0:  # lifting small ones to ``low`` overshot
            i = budgets.index(max(budgets))
            budgets[i] -= min(excess, budgets[i] - low)
        for plan, budget in zip(plans, budgets, strict=True):
            plan.budget = budget

    # --- one project's changes ----------------------------------------------------------

    def _project_ops(self, p: ProjectPlan, current: bool) -> list[Op]:
        rng = self.rng
        p.current = current
        steps = _Steps(rng, p, rng.uniform(FIRST_DAY * WORKDAY, START_BY * WORKDAY))
        # Past years are told more briefly (one demand, fewer invoices): their figures are
        # what reports read, and the demo builds in well under a minute.
        pooled = current and rng.random() < 0.4
        if pooled:  # a resident came to the office before the project existed
            steps.add("pool", data=self._demand(p.idea, contact=True))
        steps.add("open")
        if pooled:
            steps.add("link")
        for _ in range(rng.randint(0 if pooled else 1, 2 if current else 1)):
            steps.add("demand", data=self._demand(p.idea, contact=rng.random() < 0.5))
        for state in p.path:
            if not p.passes(state):
                break
            self._leave(p, state, steps)
        if p.stop == "implementation":  # stays, or is cancelled, part-way through the work
            for expense in self._expenses(p, rng.uniform(0.2, 0.6), rng.randint(0, 2)):
                steps.add("expense", data=expense)
        if p.outcome == "rejected":
            reasons = (
                content.REJECT_AT_SCREENING if p.stop == "screening" else content.REJECT_AT_REVIEW
            )
            steps.fire("reject", {"reason": rng.choice(reasons)})
        elif p.outcome == "cancelled":
            by_street = rng.random() < 0.3
            reasons = content.CANCEL_BY_STREET if by_street else content.CANCEL_BY_COMMITTEE
            steps.fire("cancel", {"reason": rng.choice(reasons)}, by_street=by_street)
        if p.outcome == "completed" and rng.random() < (0.3 if current else 0.6):
            # 自治管理: residents keep the result up; the committee records a check.
            steps.add(
                "self_manage",
                data={
                    "keeper": rng.choice(content.KEEPERS),
                    "findings": rng.choice(content.FOLLOW_UP_FINDINGS),
                    **(
                        {"volunteer_team": team}
                        if (team := rng.choice(content.VOLUNTEER_TEAMS))
                        else {}
                    ),
                },
            )
        if not current:
            steps.fit_before(LAST_DAY * WORKDAY)
        return steps.ops

    def _leave(self, p: ProjectPlan, state: str, steps: _Steps) -> None:
        """The changes that move ``p`` on out of ``state``, detours included."""
        rng = self.rng
        if state == "demand_collection":
            steps.fire("close_collection", {})
        elif state == "screening":
            steps.fire("accept", {"note": rng.choice(content.ACCEPT_NOTES)})
        elif state == "planning":
            steps.fire("submit_plan", {"budget_fen": p.budget, "plan": p.idea.plan})
        elif state in ("review", "street_review"):
            if rng.random() < 0.12:
                steps.fire("return_for_revision", {"reason": rng.choice(content.REVISION_REASONS)})
                # A revised plan only ever asks for less, so it still fits the year's money.
                p.budget = max(10_000, int(p.budget * rng.uniform(0.8, 0.95)) // 10_000 * 10_000)
                steps.fire(
                    "submit_plan",
                    {"budget_fen": p.budget, "plan": p.idea.plan + "（已按意见压缩预算）"},
                )
                if state == "street_review":
                    steps.fire("approve", self._vote())
            if state == "review":
                steps.fire("approve", self._vote())
            else:
                steps.fire(
                    "street_approve", {"note": rng.choice(content.STREET_NOTES)}, by_street=True
                )
        elif state == "implementation":
            invoices = rng.randint(1, 4) if p.current else rng.randint(1, 2)
            expenses = self._expenses(p, rng.uniform(0.85, 1.0), invoices)
            if len(expenses) > 1 and rng.random() < 0.15:
                p.held_back = [expenses.pop()]  # paid for after the evaluators' rectification
            for expense in expenses:
                steps.add("expense", data=expense)
            steps.fire("complete_implementation", {"report": p.idea.report})
        elif state == "evaluation":
            if p.held_back:
                steps.fire("rectify", {"issues": rng.choice(content.RECTIFY_ISSUES)})
                for expense in p.held_back:
                    steps.add("expense", data=expense)
                steps.fire("complete_implementation", {"report": "整改已完成。" + p.idea.report})
            steps.fire(
                "evaluate",
                {
                    "score": rng.choices([3, 4, 5], [1, 4, 5])[0],
                    "report": rng.choice(content.EVALUATIONS),
                },
            )
        elif state == "feedback":
            steps.fire(
                "close",
                {
                    "notice": content.closing_notice(
                        p.title, p.budget, p.spent, self.workflows[p.workflow].fund.label
                    ),
                    "satisfied": rng.randint(20, 160),
                    "unsatisfied": rng.randint(0, 6),
                },
            )

    def _expenses(self, p: ProjectPlan, share: float, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` expenses paying ``share`` of the budget, each with its invoice."""
        total = int(p.budget * share)
        if count == 0 or total < count:
            return []
        works = self.rng.sample(p.idea.works, min(count, len(p.idea.works)))
        weights = [self.rng.uniform(0.5, 1.5) for _ in works]
        amounts = [int(total * w / sum(weights)) for w in weights]
        amounts[-1] = total - sum(amounts[:-1])
        p.spent += total
        # 全电发票 numbers are 20 digits; the counter keeps each one unique.
        return [
            {
                "amount_fen": amount,
                "payee": payee,
                "description": what,
                "invoice_no": f"{self.rng.randint(10, 99)}32{next(self._invoices):016d}",
            }
            for (what, payee), amount in zip(works, amounts, strict=True)
        ]

    def _demand(self, idea: content.Idea, *, contact: bool) -> dict[str, Any]:
        rng = self.rng
        demand = {
            "content": rng.choice(idea.demands),
            "resident": rng.choice(content.SURNAMES) + rng.choice(content.HONORIFICS),
        }
        if contact:
            demand["contact"] = f"{rng.randint(1, 40)}幢{rng.randint(1, 6)}0{rng.randint(1, 4)}室"
        return demand

    def _vote(self) -> dict[str, int]:
        size = self.rng.choice([7, 9, 11, 13, 15])
        attendees = self.rng.randint(-(-2 * size // 3), size)  # 到会须达三分之二
        votes_for = self.rng.randint(attendees // 2 + 1, attendees)  # 赞成须过半数
        against = self.rng.randint(0, attendees - votes_for)
        return {
            "council_size": size,
            "attendees": attendees,
            "votes_for": votes_for,
            "votes_against": against,
            "abstentions": attendees - votes_for - against,
        }


def moment(year: int, office_minutes: float) -> datetime:
    day, minute = divmod(office_minutes, WORKDAY)
    morning = datetime(year, 1, 1, 8, 30, tzinfo=FISCAL_TZ) + timedelta(days=int(day))
    return (morning + timedelta(minutes=minute)).astimezone(UTC)
