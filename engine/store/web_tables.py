"""Tables of the web pages: sign-in sessions and the attempts that throttling counts.

Neither is history: a session or a failed sign-in changes no community's data, so these rows
may be deleted once they expire. Secrets are stored only as SHA-256 digests (a session id has
256 bits of entropy), and addresses and usernames in attempts only as digests too.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.store.tables import UTCDateTime


class WebSession(SQLModel, table=True):
    """A signed-in person's session; the browser holds the id, we hold its digest."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class WebAttempt(SQLModel, table=True):
    """One counted attempt: a failed sign-in (by user, by address) or a public submission."""

    __tablename__ = "web_attempts"
    __table_args__ = (sa.Index("ix_web_attempts_subject", "kind", "subject", "at"),)

    id: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
    )
    kind: str = Field(max_length=32)  # sign_in_user | sign_in_address | public_demand
    subject: str = Field(max_length=64)  # sha256 of the username or the address
    at: datetime = Field(sa_type=UTCDateTime)


web_sessions = SQLModel.metadata.tables["web_sessions"]
web_attempts = SQLModel.metadata.tables["web_attempts"]
