"""What a signed-in person's home page shows: their communities, funds and projects.

For each community in the person's scope: this year's funds (allocated, reserved, spent,
available), this year's projects grouped by step in the workflow's order, and the projects
that wait on the person — those where the person's role can take a step. An action open
from every step (such as cancelling) does not by itself make a project wait on anyone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.model import Principal, check_year, fiscal_year
from engine.rules.workflow import Workflow
from engine.store.pagination import Page
from engine.store.uow import Zizhi
from engine.usecases import communities, funds, projects
from engine.usecases.communities import CommunityView
from engine.usecases.funds import FundView
from engine.usecases.projects import ProjectView

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StepGroup:
    state: str
    label: str
    projects: list[ProjectView]


@dataclass(frozen=True, slots=True)
class CommunityOverview:
    community: CommunityView
    funds: list[FundView]
    steps: list[StepGroup]
    waiting: list[ProjectView]


@dataclass(frozen=True, slots=True)
class Overview:
    year: int
    communities: list[CommunityOverview]


def overview(
    z: Zizhi, principal: Principal, *, year: int | None = None, street: str | None = None
) -> Overview:
    """The home page of a signed-in person: per community in scope, this year's funds, projects
    by step and those waiting on the person (see the module's docstring)."""
    with z.snapshot():  # one moment for every read below
        year = check_year(year if year is not None else fiscal_year(z.clock()))
        visible = every(
            lambda c: communities.list_communities(z, principal, street=street, limit=500, cursor=c)
        )
        by_community: dict[str, list[ProjectView]] = defaultdict(list)
        listed = every(
            lambda c: projects.list_projects(z, principal, year=year, limit=500, cursor=c)
        )
        for p in listed:
            by_community[p.community_id].append(p)
        return Overview(
            year,
            [
                CommunityOverview(
                    community=c,
                    funds=funds.funds(z, principal, c.id, year=year),
                    steps=_steps(z, by_community[c.id]),
                    waiting=[p for p in by_community[c.id] if waits_on(z, p)],
                )
                for c in visible
            ],
        )


def waits_on(z: Zizhi, project: ProjectView) -> bool:
    """Whether the reader (whose allowed actions the view lists) can move the project on."""
    wf = z.workflows.get(project.workflow, project.workflow_version)
    open_states = {s for s, d in wf.states.items() if not d.final}
    return any(set(wf.actions[a].sources) != open_states for a in project.allowed_actions)


def _steps(z: Zizhi, items: list[ProjectView]) -> list[StepGroup]:
    order: dict[str, tuple[int, str]] = {}
    for p in items:
        wf: Workflow = z.workflows.get(p.workflow, p.workflow_version)
        for i, name in enumerate(wf.states):
            order.setdefault(name, (i, wf.state_label(name)))
    grouped: dict[str, list[ProjectView]] = defaultdict(list)
    for p in items:
        grouped[p.state].append(p)
    return [
        StepGroup(state, order[state][1], grouped[state])
        for state in sorted(grouped, key=lambda s: order[s][0])
    ]


def every(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """Every item of a paged list, page by page."""
    items: list[T] = []
    cursor = None
    while True:
        page = fetch(cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
