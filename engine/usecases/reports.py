"""The annual report: what a district reports about a fiscal year, per community, per street
and for the district, computed from the history and the ledger alone.

Everything is read in one consistent snapshot (``z.read()``) and derived from events and
ledger entries, never from a second bookkeeping:

* a year's projects are those whose ``project.created`` event names that year; their state is
  the destination of their last ``project.transitioned`` event (or the workflow's initial);
* opened, completed, rejected, cancelled and still open count those projects by state;
* demands received are ``demand.created`` events in the fiscal year (Asia/Shanghai); settled
  are those of them that belong (recorded on, or linked by ``demand.linked``) to a project
  of the year that is completed;
* funds sum the ledger's entries of the year's accounts: allocated (allocate), reserved
  (reserve − spend − release), spent (spend); an account the ledger never opened holds the
  policy's default allocation (as the funds view shows it) for the years from the
  community's creation to the current one; utilisation is spent / allocated;
* days are calendar days between events: opening (``project.created``) to completion, and the
  time spent in each step, from the event entering it to the event leaving it (a step passed
  twice counts both stays), medians over the projects that left it;
* the evaluation score is each project's last ``evaluate``; satisfaction is satisfied /
  (satisfied + unsatisfied) over the ``close`` actions' counts;
* self-managed projects have at least one ``project.self_managed`` record (自治管理);
* categories are the menu library's, from each project's item (old free-text categories are
  counted under the category their text names, or as unclassified).

Ratios and medians are None where nothing was there to measure; counts and money are 0.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import text
from engine.errors import NotFound
from engine.model import FISCAL_TZ, Fund, Principal, Role, check_year, fiscal_year
from engine.rules.menu import UNCLASSIFIED, UNCLASSIFIED_LABEL
from engine.store.scope import scope_clause
from engine.store.tables import communities, events, ledger_entries
from engine.store.uow import Zizhi

FINAL = ("completed", "rejected", "cancelled")
DAY = 86_400.0
SELF_MANAGED = "project.self_managed"


@dataclass(frozen=True, slots=True)
class FundFigures:
    fund: str
    label: str
    allocated_fen: int
    reserved_fen: int
    spent_fen: int
    utilisation: float | None  # spent / allocated


@dataclass(slots=True)
class Figures:
    """The figures of one community, one street or the district."""

    projects_opened: int = 0
    projects_completed: int = 0
    projects_rejected: int = 0
    projects_cancelled: int = 0
    projects_open: int = 0
    projects_self_managed: int = 0
    demands_received: int = 0
    demands_settled: int = 0
    funds: list[FundFigures] = field(default_factory=list)
    median_days_to_complete: float | None = None
    median_days_per_step: dict[str, float] = field(default_factory=dict)
    mean_evaluation_score: float | None = None
    satisfied: int = 0
    unsatisfied: int = 0
    satisfaction: float | None = None
    categories: dict[str, int] = field(default_factory=dict)  # menu category id → projects


@dataclass(slots=True)
class CommunityFigures(Figures):
    community_id: str = ""
    name: str = ""
    street: str = ""
    district: str = ""


@dataclass(slots=True)
class StreetFigures(Figures):
    street: str = ""
    communities: int = 0


@dataclass(slots=True)
class DistrictFigures(Figures):
    districts: list[str] = field(default_factory=list)
    communities: int = 0
    streets: int = 0


@dataclass(frozen=True, slots=True)
class ReportFilters:
    district: str | None
    street: str | None
    community_id: str | None


@dataclass(frozen=True, slots=True)
class AnnualReport:
    year: int
    filters: ReportFilters  # what was asked for
    communities: list[CommunityFigures]
    streets: list[StreetFigures]
    district: DistrictFigures  # the totals over every community of the report
    category_labels: dict[str, str]  # menu category id → label, in the library's order
    step_labels: dict[str, str]  # state → label, in the order projects pass them
    fund_labels: dict[str, str]


# --- one project's story, read from its events ---------------------------------------------


@dataclass(slots=True)
class _Project:
    id: int
    community_id: str
    workflow: str
    version: int
    category: str
    opened_at: datetime
    state: str
    entered_at: datetime  # when the project entered its current state
    completed_at: datetime | None = None
    score: int | None = None
    satisfied: int = 0
    unsatisfied: int = 0
    self_managed: bool = False
    stays: dict[str, float] = field(default_factory=dict)  # state → days, stays that ended
    demands: set[int] = field(default_factory=set)


def annual_report(
    z: Zizhi,
    principal: Principal,
    *,
    year: int,
    district: str | None = None,
    street: str | None = None,
    community_id: str | None = None,
) -> AnnualReport:
    """The year's report over the communities the principal sees and the filters choose.

    An unknown or unseen ``community_id`` is ``NotFound``; a street or district that matches
    nothing gives a report of no communities; a year without data gives zeros."""
    check_year(year)
    menu = z.workflows.menu
    start = datetime(year, 1, 1, tzinfo=FISCAL_TZ)
    end = datetime(year + 1, 1, 1, tzinfo=FISCAL_TZ)
    places = sa.select(communities).where(scope_clause(principal)).order_by(communities.c.id)
    if district is not None:
        places = places.where(communities.c.district_key == text.key(district))
    if street is not None:
        places = places.where(communities.c.street_key == text.key(street))
    if community_id is not None:
        places = places.where(communities.c.id == community_id)
    with z.read() as conn:
        rows = conn.execute(places).all()
        if community_id is not None and not rows:
            raise NotFound(f"社区“{community_id}”不存在")
        ids = [r.id for r in rows]
        created = _events(conn, ids, types=("project.created",))
        mine = [e for e in created if _data(e).get("year") == year]
        project_ids = [e.project_id for e in mine]
        stories = _events(conn, ids, projects=project_ids)
        received = _events(conn, ids, types=("demand.created",), between=(start, end))
        entries = _entries(conn, ids, year)

    projects = {e.project_id: _opened(e, z, menu) for e in mine}
    for e in stories:
        _apply(projects[e.project_id], e)
    by_community: dict[str, list[_Project]] = defaultdict(list)
    for p in projects.values():
        by_community[p.community_id].append(p)
    demands_of: dict[str, list[int]] = defaultdict(list)
    for e in received:
        demands_of[e.community_id].append(int(_data(e)["demand_id"]))
    money: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for entry in entries:
        sums = money[entry.community_id][entry.fund]
        if entry.kind == "allocate":
            sums[0] += entry.amount_fen
        elif entry.kind == "reserve":
            sums[1] += entry.amount_fen
        elif entry.kind == "spend":
            sums[1] -= entry.amount_fen
            sums[2] += entry.amount_fen
        elif entry.kind == "release":
            sums[1] -= entry.amount_fen

    # An account the ledger never opened holds the policy's default allocation (what the
    # ledger records on its first use, and what the funds view shows) for a community that
    # existed that year, up to the current one; earlier or later years hold nothing.
    current = fiscal_year(z.clock())
    for r in rows:
        if not fiscal_year(r.created_at) <= year <= current:
            continue
        for fund in Fund:
            if fund.value not in money[r.id]:
                money[r.id][fund.value][0] = z.policy.default_fen(fund.value, r.kind)

    reports = []
    for r in rows:
        place = CommunityFigures(
            community_id=r.id, name=r.name, street=r.street, district=r.district
        )
        _fill(place, by_community[r.id], demands_of[r.id], [money[r.id]])
        reports.append(place)
    streets = []
    for name in sorted({r.street for r in rows}, key=text.key):
        members = [r.id for r in rows if r.street == name]
        street_figures = StreetFigures(street=name, communities=len(members))
        _fill(
            street_figures,
            [p for c in members for p in by_community[c]],
            [d for c in members for d in demands_of[c]],
            [money[c] for c in members],
        )
        streets.append(street_figures)
    totals = DistrictFigures(
        districts=sorted({r.district for r in rows}, key=text.key),
        communities=len(rows),
        streets=len(streets),
    )
    _fill(
        totals,
        list(projects.values()),
        [d for c in ids for d in demands_of[c]],
        [money[c] for c in ids],
    )
    labels = {c.id: c.label for c in menu.categories} | {UNCLASSIFIED: UNCLASSIFIED_LABEL}
    return AnnualReport(
        year=year,
        filters=ReportFilters(district, street, community_id),
        communities=reports,
        streets=streets,
        district=totals,
        category_labels=labels,
        step_labels=step_labels(z),
        fund_labels={f.value: f.label for f in Fund},
    )


# The public summary reads as an auditor of the whole city would: it holds counts, money and
# places only — never a resident's name, contact or demand.
_PUBLIC_READER = Principal(id="public", name="公众", role=Role.auditor)


def public_annual_report(z: Zizhi, year: int) -> AnnualReport:
    """The district-wide report anyone may read (the public summary page)."""
    return annual_report(z, _PUBLIC_READER, year=year)


def step_labels(z: Zizhi) -> dict[str, str]:
    """The steps of every workflow that are not final, in the order projects pass them."""
    order: dict[str, str] = {}
    for wf in (z.workflows.latest(n) for n in z.workflows.names()):
        for state in wf.states:
            if not wf.is_final(state) and state not in order:
                order[state] = wf.state_label(state)
    path = ["demand_collection", "screening", "planning", "review", "street_review"]
    return dict(sorted(order.items(), key=lambda s: path.index(s[0]) if s[0] in path else 99))


# --- internals ---------------------------------------------------------------------------------


def _events(
    conn: Any,
    community_ids: list[str],
    *,
    types: tuple[str, ...] | None = None,
    projects: list[int] | None = None,
    between: tuple[datetime, datetime] | None = None,
) -> list[Any]:
    if not community_ids or projects == []:
        return []
    query = sa.select(
        events.c.id,
        events.c.at,
        events.c.type,
        events.c.community_id,
        events.c.project_id,
        events.c.data,
    ).order_by(events.c.id)
    query = query.where(events.c.community_id.in_(community_ids))
    if types is not None:
        query = query.where(events.c.type.in_(types))
    if projects is not None:
        query = query.where(events.c.project_id.in_(projects))
    if between is not None:
        query = query.where(events.c.at >= between[0], events.c.at < between[1])
    return list(conn.execute(query).all())


def _entries(conn: Any, community_ids: list[str], year: int) -> list[Any]:
    if not community_ids:
        return []
    e = ledger_entries.c
    query = sa.select(e.community_id, e.fund, e.kind, e.amount_fen).where(
        e.year == year, e.community_id.in_(community_ids)
    )
    return list(conn.execute(query).all())


def _data(event: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(event.data)
    return loaded


def _opened(event: Any, z: Zizhi, menu: Any) -> _Project:
    data = _data(event)
    category, _ = menu.category_of(data.get("menu_item"), str(data.get("category", "")))
    wf = z.workflows.get(data["workflow"], data["workflow_version"])
    return _Project(
        id=event.project_id,
        community_id=event.community_id,
        workflow=data["workflow"],
        version=data["workflow_version"],
        category=category,
        opened_at=event.at,
        state=wf.initial,
        entered_at=event.at,
    )


def _apply(p: _Project, event: Any) -> None:
    """One of the project's events, in order, onto its story."""
    data = _data(event)
    if event.type == "project.created":
        p.entered_at = event.at
    elif event.type == "project.transitioned":
        days = (event.at - p.entered_at).total_seconds() / DAY
        p.stays[data["from"]] = p.stays.get(data["from"], 0.0) + days
        p.entered_at = event.at
        p.state = data["to"]
        fields = data.get("fields") or {}
        if data["action"] == "evaluate" and "score" in fields:
            p.score = int(fields["score"])
        if data["action"] == "close":
            p.satisfied += int(fields.get("satisfied", 0))
            p.unsatisfied += int(fields.get("unsatisfied", 0))
        if data["to"] == "completed":
            p.completed_at = event.at
    elif event.type == SELF_MANAGED:
        p.self_managed = True
    elif event.type == "demand.created":
        p.demands.add(int(data["demand_id"]))
    elif event.type == "demand.linked":
        p.demands.add(int(data["demand_id"]))


def _fill(
    figures: Figures,
    projects: list[_Project],
    demands: list[int],
    money: Iterable[dict[str, list[int]]],
) -> None:
    figures.projects_opened = len(projects)
    for state in FINAL:
        setattr(figures, f"projects_{state}", sum(p.state == state for p in projects))
    figures.projects_open = sum(p.state not in FINAL for p in projects)
    figures.projects_self_managed = sum(p.self_managed for p in projects)
    figures.demands_received = len(demands)
    settled = {d for p in projects if p.state == "completed" for d in p.demands}
    figures.demands_settled = sum(d in settled for d in demands)
    totals = {f.value: [0, 0, 0] for f in Fund}
    for account in money:
        for fund, sums in account.items():
            for i in range(3):
                totals[fund][i] += sums[i]
    figures.funds = [
        FundFigures(
            fund=f.value,
            label=f.label,
            allocated_fen=totals[f.value][0],
            reserved_fen=totals[f.value][1],
            spent_fen=totals[f.value][2],
            utilisation=_ratio(totals[f.value][2], totals[f.value][0]),
        )
        for f in Fund
    ]
    done = [p for p in projects if p.completed_at is not None and p.state == "completed"]
    figures.median_days_to_complete = _median(
        [(p.completed_at - p.opened_at).total_seconds() / DAY for p in done if p.completed_at]
    )
    stays: dict[str, list[float]] = defaultdict(list)
    for p in projects:
        for state, days in p.stays.items():
            stays[state].append(days)
    figures.median_days_per_step = {
        s: m for s, values in stays.items() if (m := _median(values)) is not None
    }
    scores = [p.score for p in projects if p.score is not None]
    figures.mean_evaluation_score = round(statistics.fmean(scores), 2) if scores else None
    figures.satisfied = sum(p.satisfied for p in projects)
    figures.unsatisfied = sum(p.unsatisfied for p in projects)
    figures.satisfaction = _ratio(figures.satisfied, figures.satisfied + figures.unsatisfied)
    counts: dict[str, int] = defaultdict(int)
    for p in projects:
        counts[p.category] += 1
    figures.categories = dict(sorted(counts.items()))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None
