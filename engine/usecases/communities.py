"""Communities (社区/村): creating places and reading them, within each principal's scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import text
from engine.errors import AlreadyExists, ValidationFailed
from engine.model import (
    CommunityKind,
    IdempotencyKey,
    Principal,
    Role,
)
from engine.rules import fields
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.scope import scope_clause, visible_community
from engine.store.tables import communities
from engine.store.uow import Zizhi

COMMUNITY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
COMMUNITY_ID = re.compile(COMMUNITY_ID_PATTERN)

PLACE_FIELDS = {
    "name": fields.text("name", "名称", max_length=100, single_line=True),
    "street": fields.text("street", "街道", max_length=64, single_line=True),
    "district": fields.text("district", "区", max_length=64, single_line=True),
}


@dataclass(frozen=True, slots=True)
class CommunityView:
    id: str
    name: str
    street: str
    district: str
    kind: str
    created_at: datetime


def create_community(
    z: Zizhi,
    principal: Principal,
    *,
    id: str,
    name: str,
    street: str,
    district: str,
    kind: str,
    idempotency: IdempotencyKey | None = None,
) -> CommunityView:
    """Create a community (admin); its history chain starts with this change."""
    principal.require(Role.admin)
    errors: dict[str, str] = {}
    if not COMMUNITY_ID.fullmatch(id):  # match() would let a trailing newline through
        errors["id"] = "编号只能由小写字母、数字、_ 和 - 组成，以字母或数字开头，最长 64 位"
    if kind not in CommunityKind.__members__:
        errors["kind"] = "类型必须是 urban（社区）或 rural（村）"
    try:
        clean = fields.validate(
            PLACE_FIELDS, {"name": name, "street": street, "district": district}
        )
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed.fields(errors)
    # A community's history chain starts with its creation.
    with z.change(principal, idempotency, chain=id) as change:
        if (done := change.replay(CommunityView)) is not None:
            return done
        if (
            change.conn.execute(sa.select(communities.c.id).where(communities.c.id == id)).first()
            is not None
        ):
            raise AlreadyExists(f"社区编号“{id}”已被使用")
        row = change.conn.execute(
            sa.insert(communities)
            .values(
                id=id,
                kind=kind,
                created_at=change.at,
                street_key=text.key(clean["street"]),
                district_key=text.key(clean["district"]),
                **clean,
            )
            .returning(communities)
        ).one()
        change.history.append(
            "community.created", {"id": id, "kind": kind, **clean}, community_id=id
        )
        view = _community_view(row)
        change.commit(view)
    return view


def get_community(z: Zizhi, principal: Principal, community_id: str) -> CommunityView:
    """One community, if the principal may see it."""
    with z.read() as conn:
        return _community_view(visible_community(conn, principal, community_id))


def list_communities(
    z: Zizhi,
    principal: Principal,
    *,
    street: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[CommunityView]:
    """One page of the communities the principal may see, by id."""
    check_limit(limit)
    query = (
        sa.select(communities)
        .where(scope_clause(principal), communities.c.id > decode_cursor(cursor, ""))
        .order_by(communities.c.id)
        .limit(limit + 1)
    )
    if street is not None:
        query = query.where(communities.c.street_key == text.key(street))
    with z.read() as conn:
        rows = conn.execute(query).all()
    return page_of([_community_view(r) for r in rows], limit, lambda c: c.id)


# --- internals ---------------------------------------------------------------------------------


def _community_view(row: Any) -> CommunityView:
    return CommunityView(
        id=row.id,
        name=row.name,
        street=row.street,
        district=row.district,
        kind=row.kind,
        created_at=row.created_at,
    )
