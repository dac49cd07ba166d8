"""Expenses: money spent from a project's reservation, each with its payee's invoice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import text
from engine.errors import ActionNotAllowed, AlreadyExists
from engine.model import IdempotencyKey, Principal, Role
from engine.rules import fields
from engine.store.db import insert_ignore
from engine.store.scope import visible_project
from engine.store.statements import Prepared
from engine.store.tables import expenses, projects
from engine.store.uow import Zizhi

EXPENSE_FIELDS = {
    "amount_fen": fields.amount("amount_fen", "金额（分）"),
    "payee": fields.text("payee", "收款方", max_length=200, single_line=True),
    "invoice_no": fields.text("invoice_no", "发票号", max_length=64, single_line=True),
    "description": fields.text("description", "用途说明"),
}


_p = projects.c
_INSERT_EXPENSE = Prepared(lambda dialect: insert_ignore(dialect, expenses, *expenses.c))
_INVOICE_TAKEN = sa.select(expenses.c.id, expenses.c.payee, expenses.c.invoice_no).where(
    expenses.c.community_id == sa.bindparam("community"),
    expenses.c.payee_key == sa.bindparam("payee_key"),
    expenses.c.invoice_key == sa.bindparam("invoice_key"),
)


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
    # The project's version after this expense, in the answer that recorded it (its ETag).
    project_version: int | None = None


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
    with z.change(principal, idempotency, project=project_id) as change:
        if (done := change.replay(ExpenseView)) is not None:
            return done
        project = change.project
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
        change.ledger.spend(project, clean["amount_fen"], cause)
        view = replace(expense_view(row), project_version=change.save_project().version)
        change.commit(view)
    return view


def list_expenses(z: Zizhi, principal: Principal, project_id: int) -> list[ExpenseView]:
    """A project's expenses, oldest first."""
    with z.read() as conn:
        visible_project(conn, principal, project_id)
        rows = conn.execute(
            sa.select(expenses).where(expenses.c.project_id == project_id).order_by(expenses.c.id)
        ).all()
    return [expense_view(r) for r in rows]


def expense_view(row: Any) -> ExpenseView:
    """An ``expenses`` row as an ``ExpenseView``."""
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
