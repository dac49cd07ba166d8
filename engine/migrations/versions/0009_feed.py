"""The feed's order (events.xid) and the Merkle tree, checkpoints and signing key over it.

``events.xid`` is the writing transaction's id on PostgreSQL (default
``pg_current_xact_id()``), 0 on SQLite and for every event written before this migration
(those are all committed, so ordering them by id is final). The feed is ordered by
(xid, id) and shows on PostgreSQL only events below the oldest running transaction id;
see engine/store/feed.py. Event hashes do not cover xid: nothing about them changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
# Tables of the tree that only ever grow, guarded like events (0001).
APPEND_ONLY = ("merkle_leaves", "merkle_nodes", "audit_checkpoints")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "events",
        sa.Column("xid", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    if postgresql:
        # Existing rows keep 0 (no rewrite); new rows get their transaction's id.
        op.execute(
            "ALTER TABLE events ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.drop_index("ix_events_community", table_name="events")
    op.create_index("ix_events_feed", "events", ["xid", "id"])
    op.create_index("ix_events_community_feed", "events", ["community_id", "xid", "id"])
    # The exact filters (migration 0007) seek in feed order too, not in id order.
    for name, column in (("ix_events_type", "type"), ("ix_events_actor", "actor")):
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", [column, "xid", "id"])

    state = op.create_table(
        "merkle_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_xid", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "last_xid": -1, "last_id": 0}])
    op.create_table(
        "merkle_leaves",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    op.create_table(
        "audit_signing_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for table in APPEND_ONLY:
        if postgresql:  # zizhi_append_only() comes from 0001
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION zizhi_append_only()"
            )
            continue
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    for table in ("audit_signing_keys", *APPEND_ONLY, "merkle_state"):
        op.drop_table(table)
    op.drop_index("ix_events_community_feed", table_name="events")
    op.drop_index("ix_events_feed", table_name="events")
    op.create_index("ix_events_community", "events", ["community_id", "id"])
    for name, column in (("ix_events_type", "type"), ("ix_events_actor", "actor")):
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", [column, "id"])
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("xid")
