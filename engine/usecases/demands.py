"""Residents' demands (居民需求): the community's pool, and the demands a project takes up.

A resident's name and contact are personal data: stored in the demands table only, shown to
the community's own committee and to auditors, and never written into history events (which
street officers, webhooks and exports see). The ``demand.created`` event commits to them by a
salted hash (``engine.rules.personal``), so ``verify`` catches an edit of either, and an admin
can erase them on a resident's request (PIPL): ``erase_personal_data``, itself a
``demand.erased`` event, after which the history still verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ActionNotAllowed, AlreadyExists, GuardFailed, NotFound
from engine.model import IdempotencyKey, Principal, Role
from engine.rules import fields, personal
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.scope import visible_community, visible_project
from engine.store.statements import Prepared
from engine.store.tables import demands
from engine.store.uow import Change, Zizhi

DEMAND_FIELDS = {
    "content": fields.text("content", "需求内容"),
    "resident": fields.text("resident", "居民姓名", max_length=64, single_line=True),
    "contact": fields.text("contact", "联系方式", max_length=64, single_line=True, required=False),
}
_INSERT = Prepared(sa.insert(demands).returning(demands))
# A demand taken from the pool into a project.
DEMAND_LINK_FIELDS = {
    "demand_id": fields.FieldSpec("demand_id", "int", "需求编号", min=1, max=2**62)
}


@dataclass(frozen=True, slots=True)
class DemandView:
    id: int
    community_id: str
    project_id: int | None
    content: str
    source: str  # committee | public
    created_at: datetime
    resident: str | None = None  # personal data: None unless the reader may see it
    contact: str | None = None
    erased_at: datetime | None = None  # when the resident's name and contact were erased
    # The project's version after the demand was added to it, in that answer (its ETag).
    project_version: int | None = None


def record_demand(
    z: Zizhi,
    principal: Principal | None,
    community_id: str,
    data: Mapping[str, Any],
    *,
    idempotency: IdempotencyKey | None = None,
) -> DemandView:
    """Add a demand to the community's pool: by its committee, or (principal None) a resident."""
    if principal is not None:
        principal.require(Role.committee)
    clean = fields.validate(DEMAND_FIELDS, data)
    with z.change(principal, idempotency, community=community_id) as change:
        if (done := change.replay(DemandView)) is not None:
            return _with_personal_data(change, principal, done)
        view = _insert(change, principal, community_id, None, clean)
        change.commit(_remembered(view))
    return view


def add_to_project(
    z: Zizhi,
    principal: Principal,
    project_id: int,
    data: Mapping[str, Any],
    *,
    idempotency: IdempotencyKey | None = None,
) -> DemandView:
    """Record a new demand on the project, or take one up from the pool (``demand_id``)."""
    principal.require(Role.committee)
    from_pool = "demand_id" in data
    clean = fields.validate(DEMAND_LINK_FIELDS if from_pool else DEMAND_FIELDS, data)
    with z.change(principal, idempotency, project=project_id) as change:
        if (done := change.replay(DemandView)) is not None:
            return _with_personal_data(change, principal, done)
        project = change.project
        wf = z.workflows.get(project.workflow, project.workflow_version)
        if project.state not in wf.demands_in:
            allowed = "、".join(wf.state_label(s) for s in sorted(wf.demands_in))
            raise ActionNotAllowed(
                f"项目当前处于“{wf.state_label(project.state)}”阶段，只能在{allowed}阶段登记需求"
            )
        if from_pool:
            view = _link(change, principal, project.community_id, project_id, clean["demand_id"])
        else:
            view = _insert(change, principal, project.community_id, project_id, clean)
        view = replace(view, project_version=change.save_project().version)
        change.commit(_remembered(view))
    return view


def list_demands(
    z: Zizhi,
    principal: Principal,
    *,
    community_id: str | None = None,
    project_id: int | None = None,
    pool: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[DemandView]:
    """A community's demands (``pool``: those no project has taken up), or a project's."""
    check_limit(limit)
    query = sa.select(demands).where(demands.c.id > decode_cursor(cursor, 0))
    with z.read() as conn:
        if project_id is not None:
            community_id = visible_project(conn, principal, project_id)
            query = query.where(demands.c.project_id == project_id)
        elif community_id is not None:
            visible_community(conn, principal, community_id)
        else:
            raise ValueError("list_demands needs a community or a project")
        query = query.where(demands.c.community_id == community_id)
        if pool:
            query = query.where(demands.c.project_id.is_(None))
        rows = conn.execute(query.order_by(demands.c.id).limit(limit + 1)).all()
    return page_of([_view(r, principal) for r in rows], limit, lambda d: d.id)


def get_demand(z: Zizhi, principal: Principal, community_id: str, demand_id: int) -> DemandView:
    """One demand of a community the principal may see (in its pool or taken up)."""
    with z.read() as conn:
        visible_community(conn, principal, community_id)
        row = conn.execute(
            sa.select(demands).where(
                demands.c.id == demand_id, demands.c.community_id == community_id
            )
        ).first()
    if row is None:
        raise NotFound(f"社区 {community_id} 没有需求 {demand_id}")
    return _view(row, principal)


def _insert(
    change: Change,
    principal: Principal | None,
    community_id: str,
    project_id: int | None,
    clean: Mapping[str, Any],
) -> DemandView:
    source = "committee" if principal is not None else "public"
    salt = personal.new_salt()
    row = _INSERT.one(
        change.conn,
        {
            "community_id": community_id,
            "project_id": project_id,
            "content": clean["content"],
            "resident": clean["resident"],
            "contact": clean.get("contact"),
            "source": source,
            "created_at": change.at,
            "personal_salt": salt,
        },
    )
    change.history.append(
        "demand.created",
        {
            "demand_id": row.id,
            "source": source,
            "content": row.content,
            "has_contact": row.contact is not None,
            "personal": personal.commitment(salt, row.resident, row.contact),
        },
        community_id=community_id,
        project_id=project_id,
    )
    return _view(row, principal)


def _link(
    change: Change, principal: Principal, community_id: str, project_id: int, demand_id: int
) -> DemandView:
    d = demands.c
    row = change.conn.execute(
        sa.update(demands)
        .where(d.id == demand_id, d.community_id == community_id, d.project_id.is_(None))
        .values(project_id=project_id)
        .returning(demands)
    ).first()
    if row is None:
        existing = change.conn.execute(
            sa.select(d.project_id).where(d.id == demand_id, d.community_id == community_id)
        ).first()
        if existing is None:
            raise NotFound(f"需求 {demand_id} 不存在")
        raise GuardFailed(f"需求 {demand_id} 已纳入项目 {existing.project_id}")
    change.history.append(
        "demand.linked", {"demand_id": demand_id}, community_id=community_id, project_id=project_id
    )
    return _view(row, principal)


def erase_personal_data(
    z: Zizhi,
    principal: Principal,
    community_id: str,
    demand_id: int,
    *,
    idempotency: IdempotencyKey | None = None,
) -> DemandView:
    """Erase a resident's name and contact from a demand on request (admin; PIPL).

    The name, the contact and the salt of their commitment are emptied in the demand's row;
    the content and the demand's place in the history stay. The erasure is itself recorded
    (``demand.erased``), so the history still verifies and shows that it happened.
    """
    principal.require(Role.admin)
    d = demands.c
    with z.change(principal, idempotency, community=community_id) as change:
        if (done := change.replay(DemandView)) is not None:
            return done
        row = change.conn.execute(
            sa.update(demands)
            .where(d.id == demand_id, d.community_id == community_id, d.erased_at.is_(None))
            .values(resident=None, contact=None, personal_salt=None, erased_at=change.at)
            .returning(demands)
        ).first()
        if row is None:
            found = change.conn.execute(
                sa.select(d.erased_at).where(d.id == demand_id, d.community_id == community_id)
            ).first()
            if found is None:
                raise NotFound(f"社区 {community_id} 没有需求 {demand_id}")
            raise AlreadyExists(f"需求 {demand_id} 的居民姓名和联系方式已经删除")
        change.history.append(
            "demand.erased",
            {"demand_id": demand_id},
            community_id=community_id,
            project_id=row.project_id,
        )
        view = _view(row, principal)
        change.commit(view)
    return view


def _remembered(view: DemandView) -> DemandView:
    """The answer an Idempotency-Key keeps for a retry: never the resident's name or contact,
    which must live in the demand's row alone so that erasing them leaves no copy."""
    return replace(view, resident=None, contact=None)


def _with_personal_data(
    change: Change, principal: Principal | None, done: DemandView
) -> DemandView:
    """A retried request's first answer, with the name and contact the demand holds now
    (none once erased) for a reader who may see them."""
    row = change.conn.execute(sa.select(demands).where(demands.c.id == done.id)).first()
    if row is None:
        return done
    seen = _view(row, principal)
    return replace(done, resident=seen.resident, contact=seen.contact)


def _view(row: Any, principal: Principal | None) -> DemandView:
    sees = principal is not None and principal.sees_personal_data(row.community_id)
    return DemandView(
        id=row.id,
        community_id=row.community_id,
        project_id=row.project_id,
        content=row.content,
        source=row.source,
        created_at=row.created_at,
        resident=row.resident if sees else None,
        contact=row.contact if sees else None,
        erased_at=row.erased_at,
    )
