"""Proofs against the signed checkpoints (RFC 9162): that an event is in the tree of the
first ``tree_size`` events (inclusion), and that a larger tree extends a smaller one
(consistency). Each asks for a tree the server has signed, extending and signing it first
if the tree has not reached what is asked (``engine.usecases.checkpoints``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import NotFound, ValidationFailed
from engine.model import Principal, Role
from engine.store import merkle
from engine.store.scope import scope_clause
from engine.store.tables import communities, events
from engine.store.uow import Zizhi
from engine.usecases.checkpoints import MAX_TREE_SIZE, checkpoint, latest_signed


@dataclass(frozen=True, slots=True)
class InclusionProof:
    event_id: int
    event_hash: str
    leaf_index: int
    tree_size: int
    root_hash: str
    audit_path: list[str]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    consistency_path: list[str]


def inclusion_proof(
    z: Zizhi, principal: Principal, event_id: int, tree_size: int | None = None
) -> InclusionProof:
    """The audit path of one event the principal may see, in the tree of ``tree_size``
    leaves (default: the current checkpoint's)."""
    principal.require(Role.auditor, Role.admin, Role.street)
    _check_size("tree_size", tree_size)
    with z.read() as conn:
        row = conn.execute(_visible_event(principal, event_id)).first()
        if row is None:
            raise NotFound(f"事件 {event_id} 不存在")
        latest = latest_signed(conn)
        if (
            merkle.position_of(conn, event_id) is not None
            and latest is not None
            and (tree_size or 0) <= latest.tree_size
        ):  # the usual case: the tree holds the event already, one read answers
            return _inclusion(conn, row, latest.tree_size if tree_size is None else tree_size)
    latest = checkpoint(z)  # the tree has not reached it yet: extend it, sign anew
    with z.read() as conn:
        return _inclusion(conn, row, latest.tree_size if tree_size is None else tree_size)


def _inclusion(conn: Connection, row: Any, size: int) -> InclusionProof:
    position = merkle.position_of(conn, row.id)
    if position is None:
        raise ValidationFailed.fields({"event_id": "该事件尚未进入检查点，请稍后再试"})
    if not position < size <= merkle.size(conn):
        raise ValidationFailed.fields(
            {"tree_size": f"树的大小须在 {position + 1} 至 {merkle.size(conn)} 之间"}
        )
    path, root = merkle.compute(
        conn,
        lambda get: (merkle.inclusion_path(position, size, get), merkle.root(size, get)),
    )
    return InclusionProof(
        event_id=row.id,
        event_hash=row.hash,
        leaf_index=position,
        tree_size=size,
        root_hash=root.hex(),
        audit_path=[h.hex() for h in path],
    )


def consistency_proof(z: Zizhi, principal: Principal, first: int, second: int) -> ConsistencyProof:
    """That the tree of ``second`` leaves extends the tree of ``first`` leaves."""
    principal.require(Role.auditor, Role.admin, Role.street)
    _check_size("first", first)
    _check_size("second", second)
    if not 1 <= first <= second:
        raise ValidationFailed.fields({"first": "first 须至少为 1，且不大于 second"})
    with z.read() as conn:
        current = merkle.size(conn)
    if second > current:
        current = checkpoint(z).tree_size  # perhaps the tree has not reached it yet
    if not 1 <= first <= second:
        raise ValidationFailed.fields({"first": "first 须至少为 1，且不大于 second"})
    if second > current:
        raise ValidationFailed.fields({"second": f"second 不能大于当前树的大小 {current}"})
    with z.read() as conn:
        path, a, b = merkle.compute(
            conn,
            lambda get: (
                merkle.consistency_path(first, second, get),
                merkle.root(first, get),
                merkle.root(second, get),
            ),
        )
    return ConsistencyProof(
        first=first,
        second=second,
        first_root_hash=a.hex(),
        second_root_hash=b.hex(),
        consistency_path=[h.hex() for h in path],
    )


def _visible_event(principal: Principal, event_id: int) -> sa.Select[Any]:
    query = sa.select(events.c.id, events.c.hash).where(events.c.id == event_id)
    if not principal.unrestricted:
        query = query.where(
            events.c.community_id.in_(sa.select(communities.c.id).where(scope_clause(principal)))
        )
    return query


def _check_size(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or not 0 <= value < MAX_TREE_SIZE):
        raise ValidationFailed.fields({name: "超出范围：须为不超过当前树大小的正整数"})
