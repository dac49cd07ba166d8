"""Projects: opening one, firing its workflow actions, recording its expenses, reading them.

Each write is one short function with one straight path: locate the project (scope), lock
its community's chain, replay a repeated Idempotency-Key, load, let the workflow decide,
record the event, apply the effects through the ledger, save, commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import ActionNotAllowed, AlreadyExists, NotFound, VersionConflict, YearClosed
from engine.model import IdempotencyKey, Principal, ProjectRecord, Role, fiscal_year
from engine.rules import fields, text
from engine.rules.effects import EFFECTS
from engine.rules.workflow import Workflow
from engine.store.db import insert_ignore
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.statements import Prepared
from engine.store.tables import (
    chain_heads,
    closed_years,
    communities,
    demands,
    expenses,
    projects,
)
from engine.store.uow import Change, Zizhi
from engine.usecases.access import scope_clause, visible_community

PROJECT_FIELDS = {
    "title": fields.text("title", "项目名称", max_length=200, single_line=True),
    "category": fields.text("category", "项目类别", max_length=64, single_line=True),
}
EXPENSE_FIELDS = {
    "amount_fen": fields.amount("amount_fen", "金额（分）"),
    "payee": fields.text("payee", "收款方", max_length=200, single_line=True),
    "invoice_no": fields.text("invoice_no", "发票号", max_length=64, single_line=True),
    "description": fields.text("description", "用途说明"),
}


_p = projects.c
_LOCATE = (
    sa.select(_p.community_id, communities.c.street)
    .join(communities, communities.c.id == _p.community_id)
    .where(_p.id == sa.bindparam("project"))
)
_READ = (
    sa.select(projects, communities.c.street)
    .join(communities, communities.c.id == _p.community_id)
    .where(_p.id == sa.bindparam("project"))
)
# Writers lock the project row and its community's chain head in one statement (rows are
# locked in that order, as every writer does), and read both fresh.
_LOCK = Prepared(
    sa.select(
        projects,
        communities.c.street,
        chain_heads.c.seq.label("head_seq"),
        chain_heads.c.hash.label("head_hash"),
    )
    .join(communities, communities.c.id == _p.community_id)
    .join(chain_heads, chain_heads.c.chain == _p.community_id)
    .where(_p.id == sa.bindparam("project"))
    .with_for_update(of=[projects, chain_heads])
)
_INSERT = Prepared(sa.insert(projects).returning(projects))
_SAVE = Prepared(
    sa.update(projects)
    .where(_p.id == sa.bindparam("project"), _p.version == sa.bindparam("expected"))
    .values(version=_p.version + 1)
    .returning(_p.version, _p.reserved_fen, _p.spent_fen)
)
_DEMAND_COUNT = Prepared(
    sa.select(sa.func.count().label("count"))
    .select_from(demands)
    .where(demands.c.project_id == sa.bindparam("project"))
)
_YEAR_CLOSED = Prepared(
    sa.select(closed_years.c.year).where(closed_years.c.year == sa.bindparam("year"))
)
_INSERT_EXPENSE = Prepared(lambda dialect: insert_ignore(dialect, expenses, *expenses.c))
_INVOICE_TAKEN = sa.select(expenses.c.id, expenses.c.payee, expenses.c.invoice_no).where(
    expenses.c.community_id == sa.bindparam("community"),
    expenses.c.payee_key == sa.bindparam("payee_key"),
    expenses.c.invoice_key == sa.bindparam("invoice_key"),
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


@dataclass(frozen=True, slots=True)
class ExpenseView:
    id: int
    project_id: int
    community_id: str
    amount_fen: int
    payee: str
    invoice_no: str
    description: str
    created_at: datetime


def open_project(
    z: Zizhi,
    principal: Principal,
    *,
    community_id: str,
    workflow: str,
    title: str,
    category: str,
    idempotency: IdempotencyKey | None = None,
) -> ProjectView:
    principal.require(Role.committee)
    clean = fields.validate(PROJECT_FIELDS, {"title": title, "category": category})
    wf = z.workflows.latest(workflow)
    with z.change(principal.actor, idempotency) as change:
        visible_community(change.conn, principal, community_id)
        change.lock(community_id)
        if (done := change.replayed(ProjectView)) is not None:
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
    with z.change(principal.actor, idempotency) as change:
        if z.workflows.may_reserve(action):
            change.hold_reservations()
        project = lock(change, principal, project_id)
        if (done := change.replayed(ProjectView)) is not None:
            return done
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
        save(change, project)
        view = _view(project, wf, principal)
        change.commit(view)
    return view


def record_expense(
    z: Zizhi,
    principal: Principal,
    project_id: int,
    data: Mapping[str, Any],
    *,
    idempotency: IdempotencyKey | None = None,
) -> ExpenseView:
    """Spend from the project's reservation; only while the workflow allows expenses."""
    principal.require(Role.committee)
    clean = fields.validate(EXPENSE_FIELDS, data)
    keys = {"payee_key": text.key(clean["payee"]), "invoice_key": text.key(clean["invoice_no"])}
    with z.change(principal.actor, idempotency) as change:
        project = lock(change, principal, project_id)
        if (done := change.replayed(ExpenseView)) is not None:
            return done
        wf = z.workflows.get(project.workflow, project.workflow_version)
        if project.state not in wf.expenses_in:
            allowed = "、".join(wf.state_label(s) for s in sorted(wf.expenses_in))
            raise ActionNotAllowed(
                f"项目当前处于“{wf.state_label(project.state)}”阶段，只能在{allowed}阶段登记支出"
            )
        row = _INSERT_EXPENSE.first(
            change.conn,
            {
                "community_id": project.community_id,
                "project_id": project.id,
                "created_at": change.at,
                **clean,
                **keys,
            },
        )
        if row is None:  # the (community, payee, invoice), in normal form, is recorded already
            taken = change.conn.execute(
                _INVOICE_TAKEN, {"community": project.community_id, **keys}
            ).one()
            raise AlreadyExists(
                f"收款方“{taken.payee}”的发票 {taken.invoice_no} 已登记过（支出 {taken.id}）"
            )
        cause = change.history.append(
            "expense.recorded",
            {"expense_id": row.id, **clean},
            community_id=project.community_id,
            project_id=project.id,
        )
        change.ledger.spend(project.account, project.id, clean["amount_fen"], cause)
        save(change, project)
        view = expense_view(row)
        change.commit(view)
    return view


def get_project(z: Zizhi, principal: Principal, project_id: int) -> ProjectView:
    with z.read() as conn:
        row = conn.execute(_READ, {"project": project_id}).first()
    if row is None or not principal.covers(row.community_id, row.street):
        raise NotFound(f"项目 {project_id} 不存在")
    project = ProjectRecord.from_row(row)
    return _view(project, z.workflows.get(project.workflow, project.workflow_version), principal)


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


def list_expenses(z: Zizhi, principal: Principal, project_id: int) -> list[ExpenseView]:
    with z.read() as conn:
        locate(conn, principal, project_id)
        rows = conn.execute(
            sa.select(expenses).where(expenses.c.project_id == project_id).order_by(expenses.c.id)
        ).all()
    return [expense_view(r) for r in rows]


# --- shared with engine.demands ----------------------------------------------------------------


def locate(conn: Connection, principal: Principal, project_id: int) -> str:
    """The project's community, if the principal may see the project; else NotFound."""
    row = conn.execute(_LOCATE, {"project": project_id}).first()
    if row is None or not principal.covers(row.community_id, row.street):
        raise NotFound(f"项目 {project_id} 不存在")
    return str(row.community_id)


def lock(change: Change, principal: Principal, project_id: int) -> ProjectRecord:
    """Lock the project (if the principal may see it), then its community's chain."""
    row = _LOCK.first(change.conn, {"project": project_id})
    if row is None or not principal.covers(row.community_id, row.street):
        raise NotFound(f"项目 {project_id} 不存在")
    change.lock(row.community_id, head=(row.head_seq, row.head_hash))
    return ProjectRecord.from_row(row)


def save(change: Change, project: ProjectRecord) -> None:
    """Write the project back, bumping its version (the ETag clients send as If-Match)."""
    row = _SAVE.one(
        change.conn,
        {
            "project": project.id,
            "expected": project.version,
            "state": project.state,
            "budget_fen": project.budget_fen,
            "details": json.dumps(project.details, ensure_ascii=False),
            "updated_at": change.at,
        },
    )
    project.version, project.reserved_fen, project.spent_fen = row
    project.updated_at = change.at


def expense_view(row: Any) -> ExpenseView:
    return ExpenseView(
        id=row.id,
        project_id=row.project_id,
        community_id=row.community_id,
        amount_fen=row.amount_fen,
        payee=row.payee,
        invoice_no=row.invoice_no,
        description=row.description,
        created_at=row.created_at,
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
