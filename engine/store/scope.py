"""What a principal may see, in SQL: one community checked, or a WHERE clause for many.

Committees see the communities they are given; street officers every community of their
streets; auditors their scope, or the whole city when given none; admins everything. Outside
its scope a principal is told a thing does not exist (``not_found``), never shown it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import text
from engine.errors import NotFound
from engine.model import Principal
from engine.store.statements import Prepared
from engine.store.tables import communities, projects

# Prepared: on the request path of every write to a community and of most reads.
_PROJECT = Prepared(
    sa.select(projects.c.community_id, communities.c.street)
    .join(communities, communities.c.id == projects.c.community_id)
    .where(projects.c.id == sa.bindparam("project"))
)
_COMMUNITY = Prepared(sa.select(communities).where(communities.c.id == sa.bindparam("community")))


def visible_community(
    conn: Connection, principal: Principal | None, community_id: str
) -> sa.Row[Any]:
    """The community's row if it exists and the principal (None: the public) may see it."""
    row: sa.Row[Any] | None = _COMMUNITY.first(conn, {"community": community_id})  # a namedtuple
    if row is None or (principal is not None and not principal.covers(row.id, row.street)):
        raise NotFound(f"社区“{community_id}”不存在")
    return row


def scope_clause(principal: Principal) -> sa.ColumnElement[bool]:
    """A WHERE clause on ``communities`` selecting what this principal may see."""
    if principal.unrestricted:
        return sa.true()
    return sa.or_(
        communities.c.id.in_(sorted(principal.communities)),
        communities.c.street_key.in_(sorted({text.key(s) for s in principal.streets})),
    )


def visible_project(conn: Connection, principal: Principal, project_id: int) -> str:
    """The project's community, if the principal may see the project; else NotFound."""
    row = _PROJECT.first(conn, {"project": project_id})
    if row is None or not principal.covers(row.community_id, row.street):
        raise NotFound(f"项目 {project_id} 不存在")
    return str(row.community_id)
