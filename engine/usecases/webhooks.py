"""Webhook subscriptions (admin): create, list, update, disable, enable, delete, rotate the
secret; the catalogue of event types. Their deliveries (the log, redelivery, a test ping, the
dispatcher's bookkeeping) are ``engine.usecases.webhook_deliveries``.

Every subscription change is one change on the ``_system`` chain with a ``webhook.*``
history event, and renews the generation in ``webhook_state`` so that every process's write
path sees it at once. The secret is shown once, in the answer that created (or rotated) it:
never in history, a list, a log or a replayed answer.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import text
from engine.errors import NotFound, ValidationFailed
from engine.model import Actor, IdempotencyKey, Principal, Role
from engine.rules import fields
from engine.rules.webhooks import events as catalogue
from engine.rules.webhooks.formats import FORMATS
from engine.rules.webhooks.guard import Refused, UrlGuard
from engine.rules.webhooks.signing import new_secret
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import communities
from engine.store.uow import Change, Zizhi
from engine.store.webhook_tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_state,
    webhook_subscriptions,
)
from engine.usecases.communities import COMMUNITY_ID_PATTERN

ROTATION_OVERLAP = timedelta(hours=24)

_s = webhook_subscriptions.c
_d = webhook_deliveries.c
_a = webhook_attempts.c
_DESCRIPTION = fields.text("description", "说明", max_length=200, required=False, single_line=True)
_BOT_SECRET = re.compile(r"^[A-Za-z0-9_+/=-]{1,200}$")
_GENERATION = sa.update(webhook_state).where(webhook_state.c.id == 1)


@dataclass(frozen=True, slots=True)
class WebhookView:
    id: str
    url: str
    events: list[str]
    community_id: str | None
    street: str | None
    description: str
    format: str
    active: bool
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    # Only in the answer that created or rotated it; never stored in an answer kept for replay.
    secret: str | None = None


# --- subscriptions ------------------------------------------------------------------------


def create_subscription(
    z: Zizhi,
    principal: Principal,
    guard: UrlGuard,
    *,
    url: str,
    events: list[str],
    community_id: str | None = None,
    street: str | None = None,
    description: str | None = None,
    format: str = "standard",
    bot_secret: str | None = None,
    idempotency: IdempotencyKey | None = None,
) -> WebhookView:
    principal.require(Role.admin)
    clean = _check(
        guard,
        {
            "url": url,
            "events": events,
            "community_id": community_id,
            "street": street,
            "description": description,
            "format": format,
            "bot_secret": bot_secret,
        },
    )
    secret = new_secret()
    webhook_id = "wh_" + secrets.token_hex(8)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(WebhookView)) is not None:
            return done
        _check_places(change.conn, clean)
        row = change.conn.execute(
            sa.insert(webhook_subscriptions)
            .values(
                id=webhook_id,
                secret=secret,
                created_at=change.at,
                updated_at=change.at,
                **{**clean, "events": json.dumps(clean["events"])},
            )
            .returning(webhook_subscriptions)
        ).one()
        _changed(change, "webhook.created", row)
        view = _view(row)
        change.commit(view)
    return replace(view, secret=secret)


def list_subscriptions(z: Zizhi, principal: Principal) -> list[WebhookView]:
    principal.require(Role.admin)
    with z.read() as conn:
        rows = conn.execute(sa.select(webhook_subscriptions).order_by(_s.created_at, _s.id))
        return [_view(r) for r in rows]


def get_subscription(z: Zizhi, principal: Principal, webhook_id: str) -> WebhookView:
    principal.require(Role.admin)
    with z.read() as conn:
        return _view(subscription_row(conn, webhook_id))


UPDATABLE = ("url", "events", "community_id", "street", "description", "format", "bot_secret")


def update_subscription(
    z: Zizhi, principal: Principal, guard: UrlGuard, webhook_id: str, changes: Mapping[str, Any]
) -> WebhookView:
    """Change some of ``UPDATABLE``; an ``active`` of true or false enables or disables."""
    principal.require(Role.admin)
    unknown = [k for k in changes if k not in (*UPDATABLE, "active")]
    if unknown:
        raise ValidationFailed.fields(dict.fromkeys(unknown, "不允许的字段"))
    if "active" in changes and not isinstance(changes["active"], bool):
        raise ValidationFailed.fields({"active": "必须是 true 或 false"})
    with z.change(principal, chain=SYSTEM_CHAIN) as change:
        row = subscription_row(change.conn, webhook_id, lock=True)
        current = {k: getattr(row, k) for k in UPDATABLE}
        current["events"] = json.loads(row.events)
        clean = _check(guard, {**current, **{k: v for k, v in changes.items() if k != "active"}})
        _check_places(change.conn, clean)
        values: dict[str, Any] = {**clean, "events": json.dumps(clean["events"])}
        if changes.get("active") is True:
            values.update(disabled_at=None, disabled_reason=None, failing_since=None)
        elif changes.get("active") is False and row.disabled_at is None:
            values.update(disabled_at=change.at, disabled_reason="管理员停用")
        row = change.conn.execute(
            sa.update(webhook_subscriptions)
            .where(_s.id == webhook_id)
            .values(updated_at=change.at, **values)
            .returning(webhook_subscriptions)
        ).one()
        _changed(change, "webhook.updated", row, fields=sorted(changes))
        change.commit()
    return _view(row)


def disable_subscription(
    z: Zizhi,
    principal: Principal,
    webhook_id: str,
    *,
    idempotency: IdempotencyKey | None = None,
) -> WebhookView:
    principal.require(Role.admin)
    return disable(z, principal.actor, webhook_id, "管理员停用", idempotency=idempotency)


def delete_subscription(z: Zizhi, principal: Principal, webhook_id: str) -> WebhookView:
    """Remove the subscription, its undelivered messages and its delivery log."""
    principal.require(Role.admin)
    with z.change(principal, chain=SYSTEM_CHAIN) as change:
        row = subscription_row(change.conn, webhook_id, lock=True)
        change.conn.execute(sa.delete(webhook_attempts).where(_a.subscription_id == webhook_id))
        change.conn.execute(sa.delete(webhook_deliveries).where(_d.subscription_id == webhook_id))
        change.conn.execute(sa.delete(webhook_subscriptions).where(_s.id == webhook_id))
        _changed(change, "webhook.deleted", row)
        change.commit()
    return _view(row)


def rotate_secret(
    z: Zizhi, principal: Principal, webhook_id: str, *, idempotency: IdempotencyKey | None = None
) -> WebhookView:
    """A new secret, shown once; for 24 h messages carry a signature by each."""
    principal.require(Role.admin)
    secret = new_secret()
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(WebhookView)) is not None:
            return done
        old = subscription_row(change.conn, webhook_id, lock=True)
        row = change.conn.execute(
            sa.update(webhook_subscriptions)
            .where(_s.id == webhook_id)
            .values(
                secret=secret,
                previous_secret=old.secret,
                previous_until=change.at + ROTATION_OVERLAP,
                updated_at=change.at,
            )
            .returning(webhook_subscriptions)
        ).one()
        _changed(change, "webhook.secret_rotated", row)
        view = _view(row)
        change.commit(view)
    return replace(view, secret=secret)


def event_types() -> list[dict[str, Any]]:
    return [
        {"type": t.name, "label": t.label, "schema": catalogue.json_schema(t)}
        for t in catalogue.EVENT_TYPES.values()
    ]


# --- internals ----------------------------------------------------------------------------


def disable(
    z: Zizhi,
    actor: Actor,
    webhook_id: str,
    reason: str,
    *,
    idempotency: IdempotencyKey | None = None,
) -> WebhookView:
    """Disable (with a history event, saying ``reason``) unless already disabled, which
    changes nothing: by an admin, or by the dispatcher for a receiver that keeps failing."""
    with z.change(actor, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(WebhookView)) is not None:
            return done
        row = subscription_row(change.conn, webhook_id, lock=True)
        if row.disabled_at is None:
            row = change.conn.execute(
                sa.update(webhook_subscriptions)
                .where(_s.id == webhook_id)
                .values(disabled_at=change.at, disabled_reason=reason, updated_at=change.at)
                .returning(webhook_subscriptions)
            ).one()
            _changed(change, "webhook.disabled", row, reason=reason)
        view = _view(row)
        change.commit(view)
    return view


def _changed(change: Change, event_type: str, row: Any, **extra: Any) -> None:
    """The history event (never the secret) and a new generation for every write path."""
    active = change.conn.execute(
        sa.select(sa.func.count())
        .select_from(webhook_subscriptions)
        .where(_s.disabled_at.is_(None))
    ).scalar_one()
    change.conn.execute(_GENERATION.values(generation=secrets.randbits(62), active=active))
    change.history.append(
        event_type,
        {
            "webhook_id": row.id,
            "url": _redacted(row.url),
            "events": json.loads(row.events),
            "community_id": row.community_id,
            "street": row.street,
            "format": row.format,
            "active": row.disabled_at is None,
            **extra,
        },
    )


def _redacted(url: str) -> str:
    """A robot's URL carries its key in the query string: history keeps the rest."""
    base, _, query = url.partition("?")
    return f"{base}?…" if query else base


def _check(guard: UrlGuard, data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    url = data["url"]
    if isinstance(url, str):
        url = url.strip(" \t\u3000\u200b\ufeff")
    try:
        guard.check(url)
    except Refused as exc:
        errors["url"] = str(exc)
    events = data["events"]
    if not isinstance(events, list):
        errors["events"] = "必须是事件类型的列表"
    elif (problem := catalogue.check_patterns(events)) is not None:
        errors["events"] = problem
    else:
        events = sorted(set(events))
    community_id, street = data.get("community_id"), data.get("street")
    if community_id is not None and (
        not isinstance(community_id, str) or not re.match(COMMUNITY_ID_PATTERN, community_id)
    ):
        errors["community_id"] = "社区编号格式无效"
    if street is not None and (
        not isinstance(street, str)
        or (m := fields.text("street", "街道", max_length=64, single_line=True).check(street))
    ):
        errors["street"] = "街道名称无效" if not isinstance(street, str) else f"街道{m}"
    if community_id is not None and street is not None:
        errors["street"] = "社区与街道只能选择其一"
    description = data.get("description")
    if isinstance(description, str) and text.is_blank(description):
        description = ""  # a blank description (spaces, invisible characters) is none
    elif description is not None and (message := _DESCRIPTION.check(description)) is not None:
        errors["description"] = f"说明{message}"
    fmt = data.get("format")
    if fmt not in FORMATS:
        errors["format"] = f"格式必须是 {', '.join(FORMATS)} 之一"
    bot_secret = data.get("bot_secret")
    if bot_secret is not None and (
        fmt != "dingtalk_bot"
        or not isinstance(bot_secret, str)
        or not _BOT_SECRET.match(bot_secret)
    ):
        errors["bot_secret"] = "只有钉钉机器人（dingtalk_bot）可设加签密钥，且须为字母数字"
    if errors:
        raise ValidationFailed.fields(errors)
    return {
        "url": url,
        "events": events,
        "community_id": community_id,
        "street": street,
        "description": description or "",
        "format": fmt,
        "bot_secret": bot_secret,
    }


def _check_places(conn: Connection, clean: Mapping[str, Any]) -> None:
    if clean["community_id"] is not None:
        found = conn.execute(
            sa.select(communities.c.id).where(communities.c.id == clean["community_id"])
        ).first()
        if found is None:
            raise ValidationFailed.fields({"community_id": f"社区“{clean['community_id']}”不存在"})
    if clean["street"] is not None:
        found = conn.execute(
            sa.select(communities.c.id).where(communities.c.street == clean["street"]).limit(1)
        ).first()
        if found is None:
            raise ValidationFailed.fields({"street": f"街道“{clean['street']}”下没有社区"})


def subscription_row(conn: Connection, webhook_id: str, *, lock: bool = False) -> Any:
    """A subscription's row (locked, if ``lock``); ``not_found`` if there is none."""
    query = sa.select(webhook_subscriptions).where(_s.id == webhook_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"推送订阅“{webhook_id}”不存在")
    return row


def _view(row: Any) -> WebhookView:
    return WebhookView(
        id=row.id,
        url=row.url,
        events=json.loads(row.events),
        community_id=row.community_id,
        street=row.street,
        description=row.description,
        format=row.format,
        active=row.disabled_at is None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        last_success_at=row.last_success_at,
    )
