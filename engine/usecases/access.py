"""What a token or a user may be granted: a role and a scope of communities or streets.

What a principal may then see is ``engine.store.scope``.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import text
from engine.errors import (
    ValidationFailed,
)
from engine.model import Role
from engine.rules import fields
from engine.store.tables import communities

_NAME = fields.text("name", "名称", max_length=100, single_line=True)
_STREET = fields.text("street", "街道", max_length=64, single_line=True)


def check_grant(
    *, name: str, role: str, communities: Iterable[str], streets: Iterable[str]
) -> tuple[list[str], list[str]]:
    """A grant's name, role and scope checked together; the scope as sorted lists."""
    errors: dict[str, str] = {}
    if (message := _NAME.check(name)) is not None:
        errors["name"] = message
    if role not in Role.__members__:
        errors["role"] = f"角色必须是 {', '.join(Role)} 之一"
    community_ids = sorted(set(communities))
    street_names: list[str] = []
    for street in streets:  # as stored for communities: cleaned, one per normal form
        cleaned, message = _STREET.clean(street)
        if message is not None:
            errors["streets"] = f"街道名称{message}"
        elif text.key(cleaned) not in {text.key(s) for s in street_names}:
            street_names.append(cleaned)
    street_names.sort()
    if role == Role.committee and (not community_ids or street_names):
        errors["communities"] = "社区居委会必须指定至少一个社区，且不能指定街道"
    if role == Role.street and (not street_names or community_ids):
        errors["streets"] = "街道工作人员必须指定至少一个街道，且不能指定社区"
    if role == Role.admin and (community_ids or street_names):
        errors["role"] = "管理员不限范围，不能指定社区或街道"
    if errors:
        raise ValidationFailed.fields(errors)
    return community_ids, street_names


def check_scope_exists(conn: Connection, scope: tuple[list[str], list[str]]) -> None:
    """Every community and street of a scope exists (streets: have a community)."""
    wanted_communities, wanted_streets = scope
    errors = {}
    if wanted_communities:
        found = set(
            conn.execute(
                sa.select(communities.c.id).where(communities.c.id.in_(wanted_communities))
            ).scalars()
        )
        if missing := [c for c in wanted_communities if c not in found]:
            errors["communities"] = f"社区不存在：{'、'.join(missing)}"
    if wanted_streets:
        keys = {s: text.key(s) for s in wanted_streets}
        found = set(
            conn.execute(
                sa.select(communities.c.street_key).where(
                    communities.c.street_key.in_(sorted(set(keys.values())))
                )
            ).scalars()
        )
        if missing := [s for s in wanted_streets if keys[s] not in found]:
            errors["streets"] = f"街道下还没有任何社区：{'、'.join(missing)}"
    if errors:
        raise ValidationFailed.fields(errors)
