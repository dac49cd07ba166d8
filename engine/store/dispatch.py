"""The webhook outbox, the dispatcher's side: due deliveries claimed with a lease, and each
attempt recorded. (The write path's side, ``enqueue``, is ``engine.store.outbox``.)

Workers claim due deliveries with a lease (``lease_until``, ``lease_owner``), committed at
once, then send outside any transaction: on PostgreSQL the claim skips rows another
worker's claim is locking (``FOR UPDATE SKIP LOCKED``), on SQLite the claim runs inside the
single writer's ``BEGIN IMMEDIATE``. A worker that dies mid-attempt leaves its lease to run
out; the delivery is then claimed again and sent with the same ``webhook-id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.statements import Prepared
from engine.store.webhook_tables import webhook_attempts, webhook_deliveries, webhook_subscriptions

_s = webhook_subscriptions.c
_d = webhook_deliveries.c


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds the lease of, with what it needs to send it."""

    id: int
    message_id: str
    subscription_id: str
    type: str
    payload: str
    attempt: int  # this attempt's number, from 1
    url: str
    format: str
    secrets: tuple[str, ...]
    bot_secret: str | None


_ANY_DUE = Prepared(
    sa.select(_d.id)
    .join(webhook_subscriptions, _s.id == _d.subscription_id)
    .where(
        _d.status == "pending",
        _d.next_attempt_at <= sa.bindparam("now"),
        sa.or_(_d.lease_until.is_(None), _d.lease_until < sa.bindparam("now")),
        _s.disabled_at.is_(None),
    )
    .limit(1)
)


def any_due(conn: Connection, now: datetime) -> bool:
    """Whether a claim could find anything: a read, so an idle dispatcher never writes."""
    return _ANY_DUE.first(conn, {"now": now}) is not None


def claim(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    busy: Sequence[str] = (),
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of active subscriptions (not those in ``busy``).

    The caller commits at once; the lease, not a lock, then keeps other workers off.
    """
    due = (
        sa.select(_d.id)
        .join(webhook_subscriptions, _s.id == _d.subscription_id)
        .where(
            _d.status == "pending",
            _d.next_attempt_at <= now,
            sa.or_(_d.lease_until.is_(None), _d.lease_until < now),
            _s.disabled_at.is_(None),
        )
        .order_by(_d.next_attempt_at, _d.id)
        .limit(limit)
    )
    if busy:
        due = due.where(_d.subscription_id.not_in(list(busy)))
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(of=webhook_deliveries, skip_locked=True)
    ids = [r.id for r in conn.execute(due)]
    if not ids:
        return []
    leased = conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.id.in_(ids))
        .values(lease_until=now + lease, lease_owner=owner, attempts=_d.attempts + 1)
        .returning(_d.id, _d.message_id, _d.subscription_id, _d.type, _d.payload, _d.attempts)
    ).all()
    subs = {
        r.id: r
        for r in conn.execute(
            sa.select(webhook_subscriptions).where(
                _s.id.in_(sorted({r.subscription_id for r in leased}))
            )
        )
    }
    out = []
    for r in sorted(leased, key=lambda r: r.id):
        sub = subs[r.subscription_id]
        signing = [sub.secret]
        if sub.previous_secret and sub.previous_until and sub.previous_until > now:
            signing.append(sub.previous_secret)
        out.append(
            Claimed(
                id=r.id,
                message_id=r.message_id,
                subscription_id=r.subscription_id,
                type=r.type,
                payload=r.payload,
                attempt=r.attempts,
                url=sub.url,
                format=sub.format,
                secrets=tuple(signing),
                bot_secret=sub.bot_secret,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended; ``retry_at`` None with a failure means: give up."""

    success: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None
    gone: bool = False
    retry_at: datetime | None = None


def record(conn: Connection, claimed: Claimed, owner: str, at: datetime, outcome: Outcome) -> Any:
    """Log the attempt, settle the delivery (if this worker still holds it) and the
    subscription's failure clock. Answers the subscription's row after the update, or None
    when the subscription was deleted meanwhile: then nothing is written, for its log went
    with it.

    The subscription's row is locked first, as deleting it locks it first, so an attempt
    that ends while the subscription is being deleted waits and then finds it gone, rather
    than leave a log line behind that no subscription owns."""
    this = _s.id == claimed.subscription_id
    if conn.execute(sa.select(_s.id).where(this).with_for_update()).first() is None:
        return None
    conn.execute(
        sa.insert(webhook_attempts).values(
            delivery_id=claimed.id,
            subscription_id=claimed.subscription_id,
            message_id=claimed.message_id,
            attempt=claimed.attempt,
            at=at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            outcome="success" if outcome.success else ("gone" if outcome.gone else "failure"),
            error=outcome.error[:500] if outcome.error else None,
            response_excerpt=outcome.excerpt,
        )
    )
    if outcome.success:
        values: dict[str, Any] = {"status": "delivered", "delivered_at": at}
    elif outcome.retry_at is not None and not outcome.gone:
        values = {"next_attempt_at": outcome.retry_at}
    else:
        values = {"status": "failed"}
    conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.id == claimed.id, _d.lease_owner == owner, _d.status == "pending")
        .values(lease_until=None, lease_owner=None, **values)
    )
    sub = webhook_subscriptions
    if outcome.success:
        conn.execute(sa.update(sub).where(this).values(failing_since=None, last_success_at=at))
    else:
        conn.execute(
            sa.update(sub).where(this, _s.failing_since.is_(None)).values(failing_since=at)
        )
    return conn.execute(sa.select(sub).where(this)).first()
