"""Projects: opening one, firing its workflow actions, reading them.

Each write is one change (``z.change``: barrier, locks, Idempotency-Key); the use case then
lets the workflow decide, records the event, applies the effects through the ledger, saves
the project once and commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFound, ValidationFailed, VersionConflict, YearClosed
from engine.model import IdempotencyKey, Principal, ProjectRecord, Role, fiscal_year
from engine.rules import fields
from engine.rules.effects import EFFECTS
from engine.rules.workflow import Workflow
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.replay import project_as_recorded
from engine.store.scope import scope_clause
from engine.store.statements import Prepared
from engine.store.tables import closed_years, communities, demands, events, projects
from engine.store.uow import Change, Zizhi

PROJECT_FIELDS = {
    "title": fields.text("title", "项目名称", max_length=200, single_line=True),
    "category": fields.text("category", "项目类别", max_length=64, single_line=True),
    "menu_item": fields.text("menu_item", "菜单项目", max_length=64, single_line=True),
}
_p = projects.c
_READ = (
    sa.select(projects, communities.c.street)
    .join(communities, communities.c.id == _p.community_id)
    .where(_p.id == sa.bindparam("project"))
)
_INSERT = Prepared(sa.insert(projects).returning(projects))
_DEMAND_COUNT = Prepared(
    sa.select(sa.func.count().label("count"))
    .select_from(demands)
    .where(demands.c.project_id == sa.bindparam("project"))
)
_YEAR_CLOSED = Prepared(
    sa.select(closed_years.c.year).where(closed_years.c.year == sa.bindparam("year"))
)


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: int
    community_id: str
    workflow: str
    workflow_version: int
    fund: str
    year: int
    title: str
    category: str
    menu_item: str | None  # the menu project library's item; None for projects opened before it
    state: str
    state_label: str
    version: int
    budget_fen: int | None
    reserved_fen: int  # still reserved for the project, not yet spent
    spent_fen: int
    allowed_actions: list[str]
    details: dict[str, Any]  # the fields each action last recorded, by action
    created_at: datetime
    updated_at: datetime


def open_project(
    z: Zizhi,
    principal: Principal,
    *,
    community_id: str,
    workflow: str,
    title: str,
    menu_item: str | None = None,
    category: str | None = None,
    idempotency: IdempotencyKey | None = None,
) -> ProjectView:
    """Open a project on the latest version of ``workflow`` (the community's committee).

    The project names an item of the menu project library; its category follows. A client
    that sends only a category (as before the library) must name one of its categories."""
    principal.require(Role.committee)
    clean = classify(z, title=title, menu_item=menu_item, category=category)
    wf = z.workflows.latest(workflow)
    with z.change(principal, idempotency, community=community_id) as change:
        if (done := change.replay(ProjectView)) is not None:
            return done
        year = fiscal_year(change.at)
        _refuse_if_closed(change, year, "不能再新建项目")
        row = _INSERT.one(
            change.conn,
            {
                "community_id": community_id,
                "workflow": wf.name,
                "workflow_version": wf.version,
                "fund": wf.fund.value,
                "year": year,
                "state": wf.initial,
                "version": 1,
                "budget_fen": None,
                "reserved_fen": 0,
                "spent_fen": 0,
                "details": "{}",
                "created_at": change.at,
                "updated_at": change.at,
                **clean,
            },
        )
        project = ProjectRecord.from_row(row)
        change.history.append(
            "project.created",
            {
                "workflow": wf.name,
                "workflow_version": wf.version,
                "fund": wf.fund.value,
                "year": year,
                "state": wf.initial,
                **clean,
            },
            community_id=community_id,
            project_id=project.id,
        )
        view = _view(project, wf, principal)
        change.commit(view)
    return view


def classify(
    z: Zizhi, *, title: str, menu_item: str | None, category: str | None
) -> dict[str, Any]:
    """The title, the menu item and the category a new project is stored with."""
    given = {"title": title, "menu_item": menu_item, "category": category}
    specs = {k: v for k, v in PROJECT_FIELDS.items() if given[k] is not None or k == "title"}
    clean = fields.validate(specs, {k: v for k, v in given.items() if v is not None})
    menu = z.workflows.menu
    if "menu_item" in clean:
        item = menu.item(clean["menu_item"])
        named = menu.category(clean["category"]) if "category" in clean else None
        if "category" in clean and (named is None or named.id != item.category_id):
            raise ValidationFailed.fields(
                {"category": f"与所选菜单项目的类别（{item.category_label}）不符；可不填"}
            )
        return {"title": clean["title"], "menu_item": item.id, "category": item.category_label}
    if "category" in clean and (named := menu.category(clean["category"])) is not None:
        return {"title": clean["title"], "menu_item": None, "category": named.label}
    errors = {"menu_item": "缺少菜单项目：请从菜单式项目库（GET /api/v1/menu）中选择一项"}
    if "category" in clean:
        known = "、".join(c.label for c in menu.categories)
        errors["category"] = f"不是菜单式项目库的类别（{known}）"
    raise ValidationFailed.fields(errors)


def fire(
    z: Zizhi,
    principal: Principal,
    project_id: int,
    action: str,
    data: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    idempotency: IdempotencyKey | None = None,
) -> ProjectView:
    """Fire one workflow action on a project, atomically with its ledger effects."""
    reserving = z.workflows.may_reserve(action)
    with z.change(principal, idempotency, project=project_id, reserving=reserving) as change:
        if (done := change.replay(ProjectView)) is not None:
            return done
        project = change.project
        _check_version(project, expected_version)
        wf = z.workflows.get(project.workflow, project.workflow_version)
        step = wf.decide(project.state, action, principal.role, data, _Facts(change, project))
        if "set_budget" in step.action.effects:  # a plan: only for a year that takes them
            _refuse_if_closed(change, project.year, "不能再提交方案")
        cause = change.history.append(
            "project.transitioned",
            {
                "action": action,
                "from": step.source,
                "to": step.dest,
                "fields": step.data,
            },
            community_id=project.community_id,
            project_id=project.id,
        )
        for name in step.action.effects:
            EFFECTS[name].apply(change.ledger, project, step.data, cause)
        project.state = step.dest
        project.details[action] = dict(step.data)
        view = _view(change.save_project(), wf, principal)
        change.commit(view)
    return view


def get_project(
    z: Zizhi, principal: Principal, project_id: int, *, as_of: datetime | None = None
) -> ProjectView:
    """One project, with the actions the principal may fire now; or, ``as_of`` a past
    moment, the project as it stood then, rebuilt from its history events up to that moment
    (with no actions: nobody acts in the past)."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationFailed.fields({"as_of": "时间必须带时区，例如 2026-03-01T12:00:00+08:00"})
    with z.read() as conn:
        row = conn.execute(_READ, {"project": project_id}).first()
        if row is None or not principal.covers(row.community_id, row.street):
            raise NotFound(f"项目 {project_id} 不存在")
        if as_of is not None:
            history = conn.execute(
                sa.select(events)
                .where(events.c.project_id == project_id, events.c.at <= as_of)
                .order_by(events.c.chain, events.c.seq)
            ).all()
    project = ProjectRecord.from_row(row)
    wf = z.workflows.get(project.workflow, project.workflow_version)
    if as_of is None:
        return _view(project, wf, principal)
    then = project_as_recorded(history, project_id)
    if then is None:
        raise NotFound(f"项目 {project_id} 在该时刻尚未创建")
    values, details = then
    past = ProjectRecord(**values, details=details)
    return replace(_view(past, wf, principal), allowed_actions=[])


def list_projects(
    z: Zizhi,
    principal: Principal,
    *,
    community_id: str | None = None,
    state: str | None = None,
    year: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ProjectView]:
    """One page of the projects the principal may see, by id, optionally filtered."""
    check_limit(limit)
    query = (
        sa.select(projects)
        .join(communities, communities.c.id == projects.c.community_id)
        .where(scope_clause(principal), projects.c.id > decode_cursor(cursor, 0))
        .order_by(projects.c.id)
        .limit(limit + 1)
    )
    if community_id is not None:
        query = query.where(projects.c.community_id == community_id)
    if state is not None:
        query = query.where(projects.c.state == state)
    if year is not None:
        query = query.where(projects.c.year == year)
    with z.read() as conn:
        rows = conn.execute(query).all()
    page = page_of([ProjectRecord.from_row(r) for r in rows], limit, lambda p: p.id)
    return Page(
        [_view(p, z.workflows.get(p.workflow, p.workflow_version), principal) for p in page.items],
        page.next_cursor,
    )


# --- internals ---------------------------------------------------------------------------------


def _refuse_if_closed(change: Change, year: int, what: str) -> None:
    if _YEAR_CLOSED.first(change.conn, {"year": year}) is not None:
        raise YearClosed(f"{year} 年度已结账，{what}")


def _check_version(project: ProjectRecord, expected: int | None) -> None:
    if expected is not None and expected != project.version:
        raise VersionConflict(
            f"项目已被更新（当前版本 {project.version}，请求基于版本 {expected}）；请刷新后重试",
            current_version=project.version,
        )


def _view(project: ProjectRecord, wf: Workflow, principal: Principal) -> ProjectView:
    # Not dataclasses.asdict: it deep-copies, which costs more than the rest of the view.
    return ProjectView(
        **{name: getattr(project, name) for name in ProjectRecord.__slots__},
        state_label=wf.state_label(project.state),
        allowed_actions=wf.allowed_actions(project.state, principal.role),
    )


class _Facts:
    """What the workflow's conditions may read about the project, inside the change."""

    def __init__(self, change: Change, project: ProjectRecord) -> None:
        self._change = change
        self._project = project

    def demand_count(self) -> int:
        return int(_DEMAND_COUNT.one(self._change.conn, {"project": self._project.id}).count)

    def available_fen(self) -> int:
        return self._change.ledger.available_fen(self._project.account)


def definitions_missing(z: Zizhi) -> list[tuple[str, int]]:
    """Workflow versions that some project runs on and this registry has not loaded (a
    definition file removed): a server without them could neither show nor move those
    projects, so it should not start."""
    with z.read() as conn:
        used = conn.execute(sa.select(_p.workflow, _p.workflow_version).distinct()).all()
    return sorted((name, version) for name, version in used if not z.workflows.has(name, version))
