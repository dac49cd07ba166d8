"""Webhook tables: subscriptions, the outbox of deliveries, and every attempt made.

``webhook_state`` is one row: how many subscriptions are active and a generation number that
every subscription change moves on. The write path reads only that row when it has nothing to
send, so with no subscription a change costs one primary-key read more; a process caches the
active subscriptions under their generation and reloads them when it moves.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.store.tables import BigId, UTCDateTime


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscriptions"

    id: str = Field(primary_key=True, max_length=32)
    url: str = Field(sa_type=sa.Text)
    events: str = Field(sa_type=sa.Text)  # JSON list of patterns: a type, "ledger.*" or "*"
    community_id: str | None = Field(default=None, max_length=64)
    street: str | None = Field(default=None, max_length=64)
    description: str = Field(max_length=200)
    format: str = Field(max_length=16)  # standard | wecom_bot | dingtalk_bot
    # The signing secret: kept (it must sign), never shown after creation, never in history.
    secret: str = Field(max_length=128)
    # After a rotation the old secret also signs, until previous_until (24 h).
    previous_secret: str | None = Field(default=None, max_length=128)
    previous_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A DingTalk robot's own "加签" secret (SEC…), given by the admin; it signs the URL.
    bot_secret: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_reason: str | None = Field(default=None, max_length=200)
    # The first failure since the last success; a subscription failing too long is disabled.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookState(SQLModel, table=True):
    __tablename__ = "webhook_state"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    generation: int = Field(sa_type=sa.BigInteger)
    active: int = Field(sa_type=sa.BigInteger)


class WebhookDelivery(SQLModel, table=True):
    """One message for one subscription: written with the change, sent at least once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    message_id: str = Field(max_length=64, unique=True)  # the webhook-id, kept across retries
    subscription_id: str = Field(max_length=32)
    event_id: int | None = Field(default=None, sa_type=sa.BigInteger)  # None: a test ping
    community_id: str | None = Field(default=None, max_length=64)
    type: str = Field(max_length=64)
    payload: str = Field(sa_type=sa.Text)  # the JSON body, exactly as signed and sent
    status: str = Field(max_length=16)  # pending | delivered | failed | cancelled
    attempts: int
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: when, how it ended, and a bounded excerpt."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_subscription", "subscription_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    delivery_id: int = Field(sa_type=sa.BigInteger, index=True)
    subscription_id: str = Field(max_length=32)
    message_id: str = Field(max_length=64)
    attempt: int
    at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: int
    status_code: int | None = None
    outcome: str = Field(max_length=16)  # success | failure | gone
    error: str | None = Field(default=None, max_length=500)
    response_excerpt: str | None = Field(default=None, sa_type=sa.Text)


metadata = SQLModel.metadata
webhook_subscriptions = metadata.tables["webhook_subscriptions"]
webhook_state = metadata.tables["webhook_state"]
webhook_deliveries = metadata.tables["webhook_deliveries"]
webhook_attempts = metadata.tables["webhook_attempts"]
