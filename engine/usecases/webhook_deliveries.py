"""A subscription's deliveries (admin): the delivery log with every attempt, redelivery and a
test ping; and the dispatcher's bookkeeping of each attempt, which disables a subscription
that answers ``410 Gone`` or has failed for too long.

Subscriptions themselves are ``engine.usecases.webhooks``; the outbox the dispatcher claims
from is ``engine.store.outbox``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFound
from engine.model import Actor, IdempotencyKey, Principal, Role
from engine.rules.webhooks import events as catalogue
from engine.store import dispatch, outbox
from engine.store.history import SYSTEM_CHAIN
from engine.store.pagination import Page, check_limit, decode_cursor, encode_cursor
from engine.store.uow import Zizhi
from engine.store.webhook_tables import webhook_attempts, webhook_deliveries
from engine.usecases.webhooks import disable, subscription_row

EXCERPT_BYTES = 1024
DISPATCHER = Actor("dispatcher", "system")

_d = webhook_deliveries.c
_a = webhook_attempts.c
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempt: int
    at: datetime
    duration_ms: int
    status_code: int | None
    outcome: str
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    webhook_id: str
    message_id: str
    type: str
    event_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptView] = field(default_factory=list)


def list_deliveries(
    z: Zizhi,
    principal: Principal,
    webhook_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[DeliveryView]:
    """Newest first, each with every attempt made."""
    principal.require(Role.admin)
    check_limit(limit)
    before = decode_cursor(cursor, _MAX_INT)
    with z.read() as conn:
        subscription_row(conn, webhook_id)
        rows = conn.execute(
            sa.select(webhook_deliveries)
            .where(_d.subscription_id == webhook_id, _d.id < before)
            .order_by(_d.id.desc())
            .limit(limit + 1)
        ).all()
        page, more = rows[:limit], len(rows) > limit
        attempts: dict[int, list[AttemptView]] = {}
        if page:
            for a in conn.execute(
                sa.select(webhook_attempts)
                .where(_a.delivery_id.in_([r.id for r in page]))
                .order_by(_a.id)
            ):
                attempts.setdefault(a.delivery_id, []).append(_attempt_view(a))
    items = [_delivery_view(r, attempts.get(r.id, [])) for r in page]
    return Page(items, encode_cursor(page[-1].id) if more else None)


def redeliver(
    z: Zizhi,
    principal: Principal,
    webhook_id: str,
    delivery_id: int,
    *,
    idempotency: IdempotencyKey | None = None,
) -> DeliveryView:
    """Send a delivery again, with the same ``webhook-id``, as soon as a worker is free."""
    principal.require(Role.admin)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(DeliveryView)) is not None:
            return done
        row = change.conn.execute(
            sa.update(webhook_deliveries)
            .where(_d.id == delivery_id, _d.subscription_id == webhook_id)
            .values(status="pending", next_attempt_at=change.at, lease_until=None, lease_owner=None)
            .returning(webhook_deliveries)
        ).first()
        if row is None:
            raise NotFound(f"推送记录 {delivery_id} 不存在")
        view = _delivery_view(row, [])
        change.commit(view)
    return view


def ping(
    z: Zizhi, principal: Principal, webhook_id: str, *, idempotency: IdempotencyKey | None = None
) -> DeliveryView:
    """Queue a ``webhook.test`` message to the subscription."""
    principal.require(Role.admin)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(DeliveryView)) is not None:
            return done
        subscription_row(change.conn, webhook_id)
        stamp = change.at.isoformat().replace("+00:00", "Z")
        event = dict.fromkeys(("event_id", "chain", "seq", "hash", "community_id", "project_id"))
        payload = catalogue.body(
            event_type="webhook.test",
            timestamp=stamp,
            event={**event, "at": stamp, "summary": "自治推送测试"},
            details={"webhook_id": webhook_id, "message": "这是一条测试推送"},
            project=None,
            community=None,
        )
        row = change.conn.execute(
            sa.insert(webhook_deliveries)
            .values(
                message_id=outbox.new_message_id(),
                subscription_id=webhook_id,
                event_id=None,
                community_id=None,
                type="webhook.test",
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=change.at,
                created_at=change.at,
            )
            .returning(webhook_deliveries)
        ).one()
        view = _delivery_view(row, [])
        change.commit(view)
    return view


# --- the dispatcher's bookkeeping ---------------------------------------------------------


def record_attempt(
    z: Zizhi,
    claimed: dispatch.Claimed,
    owner: str,
    result: dispatch.Outcome,
    *,
    disable_after: timedelta,
) -> None:
    """Log an attempt; a ``410 Gone`` or a failure with no success for ``disable_after``
    disables the subscription, with a history event saying why."""
    at = z.clock()
    with z.db.write() as conn:
        sub = dispatch.record(conn, claimed, owner, at, result)
        conn.commit()
    if sub is None or sub.disabled_at is not None or result.success:
        return
    if result.gone:
        reason = "接收方答复 410 Gone，已自动停用"
    elif sub.failing_since is not None and at - sub.failing_since >= disable_after:
        reason = f"连续失败超过 {_duration(disable_after)} 且无一次成功，已自动停用"
    else:
        return
    disable(z, DISPATCHER, claimed.subscription_id, reason)


def _attempt_view(row: Any) -> AttemptView:
    return AttemptView(
        attempt=row.attempt,
        at=row.at,
        duration_ms=row.duration_ms,
        status_code=row.status_code,
        outcome=row.outcome,
        error=row.error,
        response_excerpt=row.response_excerpt,
    )


def _delivery_view(row: Any, attempts: list[AttemptView]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        webhook_id=row.subscription_id,
        message_id=row.message_id,
        type=row.type,
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        attempt_log=attempts,
    )


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} 天"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    return f"{seconds} 秒"
