"""The database tables, declared once with SQLModel and used through SQLAlchemy Core.

Every table that holds a community's data carries ``community_id``, so the data can shard by
community (DESIGN §11). Money columns are 64-bit integers of fen. The hot path reads and
writes these tables with Core statements on ``Model.__table__``; no ORM sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Fen = sa.BigInteger


def _id() -> Any:
    return Field(default=None, primary_key=True, sa_type=BigId)


def _at() -> Any:
    return Field(sa_type=UTCDateTime)


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    street: str = Field(max_length=64, index=True)
    district: str = Field(max_length=64, index=True)
    # The names' normal forms (engine.text.key): scoping and filters compare these.
    street_key: str = Field(sa_type=sa.Text, index=True)
    district_key: str = Field(sa_type=sa.Text, index=True)
    kind: str = Field(max_length=8)
    created_at: datetime = _at()


class ChainHead(SQLModel, table=True):
    """The tip of one history chain; locking this row serialises writers of one chain only."""

    __tablename__ = "chain_heads"

    chain: str = Field(primary_key=True, max_length=64)
    seq: int = Field(sa_type=sa.BigInteger)
    hash: str = Field(max_length=64)


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("chain", "seq", name="uq_events_chain_seq"),
        # The feed's order is (xid, id): see engine/store/feed.py.
        sa.Index("ix_events_feed", "xid", "id"),
        sa.Index("ix_events_community_feed", "community_id", "xid", "id"),
        sa.Index("ix_events_project", "project_id", "xid", "id"),
        sa.Index("ix_events_at", "at"),
        sa.Index("ix_events_type", "type", "xid", "id"),
        sa.Index("ix_events_actor", "actor", "xid", "id"),
    )

    id: int | None = _id()
    chain: str = Field(max_length=64)
    seq: int = Field(sa_type=sa.BigInteger)
    at: datetime = _at()
    actor: str = Field(max_length=128)
    role: str = Field(max_length=16)
    community_id: str | None = Field(default=None, max_length=64)
    project_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    type: str = Field(max_length=64)
    # Canonical JSON text exactly as hashed (never JSONB, which would re-serialise it).
    data: str = Field(sa_type=sa.Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # The writing transaction's id on PostgreSQL (the column's default there is
    # pg_current_xact_id(), set by migration 0009); always 0 on SQLite. Not hashed.
    # No Python default: an INSERT leaves the column to the database's default.
    xid: int = Field(sa_type=sa.BigInteger, sa_column_kwargs={"server_default": sa.text("0")})


class FundAccount(SQLModel, table=True):
    """Balances of one (community, fund, year); always equal to the sum of its entries."""

    __tablename__ = "fund_accounts"
    __table_args__ = (
        # The cap, held by the database itself as a last line behind the conditional updates.
        sa.CheckConstraint(
            "reserved_fen >= 0 AND spent_fen >= 0 AND reserved_fen + spent_fen <= allocated_fen",
            name="ck_fund_accounts_cap",
        ),
    )

    community_id: str = Field(primary_key=True, max_length=64)
    fund: str = Field(primary_key=True, max_length=32)
    year: int = Field(primary_key=True)
    allocated_fen: int = Field(sa_type=Fen)
    reserved_fen: int = Field(sa_type=Fen)
    spent_fen: int = Field(sa_type=Fen)


class LedgerEntry(SQLModel, table=True):
    """One append-only movement; carries the account's balances right after it."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.Index("ix_ledger_entries_account", "community_id", "fund", "year", "id"),
        sa.Index("ix_ledger_entries_project", "project_id"),
    )

    id: int | None = _id()
    community_id: str = Field(max_length=64)
    fund: str = Field(max_length=32)
    year: int
    kind: str = Field(max_length=16)  # allocate | reserve | spend | release
    amount_fen: int = Field(sa_type=Fen)  # signed only for allocate
    project_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    event_id: int = Field(sa_type=sa.BigInteger)  # the history event of the change
    at: datetime = _at()
    allocated_fen: int = Field(sa_type=Fen)
    reserved_fen: int = Field(sa_type=Fen)
    spent_fen: int = Field(sa_type=Fen)


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint("reserved_fen >= 0 AND spent_fen >= 0", name="ck_projects_money"),
        sa.Index("ix_projects_community", "community_id", "id"),
    )

    id: int | None = _id()
    community_id: str = Field(max_length=64)
    workflow: str = Field(max_length=64)
    workflow_version: int
    fund: str = Field(max_length=32)
    year: int
    title: str = Field(max_length=200)
    category: str = Field(max_length=64)
    # The menu project library's item (issue 12); NULL for projects opened before it, whose
    # category is free text.
    menu_item: str | None = Field(default=None, max_length=16)
    state: str = Field(max_length=32)
    version: int
    budget_fen: int | None = Field(default=None, sa_type=Fen)
    reserved_fen: int = Field(sa_type=Fen)  # still reserved, not yet spent
    spent_fen: int = Field(sa_type=Fen)
    details: str = Field(sa_type=sa.Text)  # JSON: the latest fields each action recorded
    created_at: datetime = _at()
    updated_at: datetime = _at()


class Demand(SQLModel, table=True):
    __tablename__ = "demands"
    __table_args__ = (
        sa.Index("ix_demands_community", "community_id", "id"),
        sa.Index("ix_demands_project", "project_id"),
    )

    id: int | None = _id()
    community_id: str = Field(max_length=64)
    project_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    content: str = Field(sa_type=sa.Text)
    # Personal data: shown to the community's own committee and to auditors only; erasable
    # on request (PIPL), which empties resident, contact and the salt and sets erased_at.
    resident: str | None = Field(default=None, max_length=64)
    contact: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=16)  # committee | public
    created_at: datetime = _at()
    # The random salt of the personal-data commitment in the demand.created event.
    personal_salt: str | None = Field(default=None, max_length=64)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Expense(SQLModel, table=True):
    __tablename__ = "expenses"
    __table_args__ = (
        # One invoice per payee and community, compared in normal form (engine.text.key).
        sa.UniqueConstraint(
            "community_id", "payee_key", "invoice_key", name="uq_expenses_invoice_key"
        ),
        sa.Index("ix_expenses_project", "project_id"),
        sa.Index("ix_expenses_community", "community_id", "id"),
    )

    id: int | None = _id()
    community_id: str = Field(max_length=64)
    project_id: int = Field(sa_type=sa.BigInteger)
    amount_fen: int = Field(sa_type=Fen)
    payee: str = Field(max_length=200)
    invoice_no: str = Field(max_length=64)
    payee_key: str = Field(sa_type=sa.Text)
    invoice_key: str = Field(sa_type=sa.Text)
    description: str = Field(sa_type=sa.Text)
    created_at: datetime = _at()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)
    communities: str = Field(sa_type=sa.Text)  # JSON list of community ids
    streets: str = Field(sa_type=sa.Text)  # JSON list of street names
    # sha256 hex; the token itself is never stored
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _at()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = _id()
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    communities: str = Field(sa_type=sa.Text)
    streets: str = Field(sa_type=sa.Text)
    created_at: datetime = _at()
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a POST with an Idempotency-Key, written in the same transaction."""

    __tablename__ = "idempotency_keys"

    principal: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    result_kind: str = Field(max_length=32)
    result: str = Field(sa_type=sa.Text)
    created_at: datetime = _at()


class ClosedYear(SQLModel, table=True):
    """A closed fiscal year: its reservations were released and no new ones are taken."""

    __tablename__ = "closed_years"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    closed_at: datetime = _at()
    event_id: int = Field(sa_type=sa.BigInteger)


class AccessRecord(SQLModel, table=True):
    """Who looked at what: one auditor's or street officer's query of the history, a
    statement or an export. Its own table, never a hash chain, so readers never hold up the
    writers' chains; append-only like the history (triggers, migration 0008)."""

    __tablename__ = "access_log"
    __table_args__ = (sa.Index("ix_access_log_actor", "actor", "id"),)

    id: int | None = _id()
    at: datetime = _at()
    actor: str = Field(max_length=128)
    role: str = Field(max_length=16)
    # events | export | project_history | statement | verify | verify_tree
    what: str = Field(max_length=32)
    query: str = Field(sa_type=sa.Text)  # canonical JSON of what was asked
    rows: int = Field(sa_type=sa.BigInteger)  # how many rows the answer held


class MerkleState(SQLModel, table=True):
    """How far the Merkle tree over the feed reaches: its size and the last leaf's feed key."""

    __tablename__ = "merkle_state"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(sa_type=sa.BigInteger)
    last_xid: int = Field(sa_type=sa.BigInteger)
    last_id: int = Field(sa_type=sa.BigInteger)


class MerkleLeaf(SQLModel, table=True):
    """An event's position (leaf index) in the feed order, once the feed reached it."""

    __tablename__ = "merkle_leaves"

    position: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    event_id: int = Field(sa_type=sa.BigInteger, unique=True)


class MerkleNode(SQLModel, table=True):
    """The hash of a complete subtree: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __tablename__ = "merkle_nodes"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    hash: str = Field(max_length=64)


class MerkleBlock(SQLModel, table=True):
    """The earliest and latest event times among the leaves ``[block * BLOCK, (block + 1) *
    BLOCK)`` of a complete block (``engine.store.merkle.BLOCK``): which blocks a ``since=``
    or ``until=`` page reads."""

    __tablename__ = "merkle_blocks"
    __table_args__ = (
        sa.Index("ix_merkle_blocks_min_at", "min_at", "block"),
        sa.Index("ix_merkle_blocks_max_at", "max_at", "block"),
    )

    block: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    min_at: datetime = _at()
    max_at: datetime = _at()


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint (tree size, root hash, time) as it was served."""

    __tablename__ = "audit_checkpoints"

    tree_size: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    root_hash: str = Field(max_length=64)
    at: datetime = _at()
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class AuditSigningKey(SQLModel, table=True):
    """The server's Ed25519 key, made on first start (raw 32-byte halves, base64)."""

    __tablename__ = "audit_signing_keys"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    private_key: str = Field(max_length=64)
    public_key: str = Field(max_length=64)
    created_at: datetime = _at()


metadata = SQLModel.metadata

communities = metadata.tables["communities"]
chain_heads = metadata.tables["chain_heads"]
events = metadata.tables["events"]
fund_accounts = metadata.tables["fund_accounts"]
ledger_entries = metadata.tables["ledger_entries"]
projects = metadata.tables["projects"]
demands = metadata.tables["demands"]
expenses = metadata.tables["expenses"]
api_tokens = metadata.tables["api_tokens"]
users = metadata.tables["users"]
idempotency_keys = metadata.tables["idempotency_keys"]
closed_years = metadata.tables["closed_years"]
access_log = metadata.tables["access_log"]
merkle_state = metadata.tables["merkle_state"]
merkle_leaves = metadata.tables["merkle_leaves"]
merkle_nodes = metadata.tables["merkle_nodes"]
merkle_blocks = metadata.tables["merkle_blocks"]
audit_checkpoints = metadata.tables["audit_checkpoints"]
audit_signing_keys = metadata.tables["audit_signing_keys"]

# Tables that only ever grow: the database refuses UPDATE and DELETE on them.
APPEND_ONLY = ("events", "ledger_entries")
