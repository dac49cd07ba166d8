"""``since=`` seeks: the running maximum of event times per block of 1,024 Merkle leaves.

An audit page ``since=`` a moment is ordered by the feed, not by time, so without help it
reads the feed from its start until it meets events that late — most of the table for a
recent moment. ``merkle_blocks`` holds, for each complete block of ``engine.store.merkle.BLOCK``
leaves, the latest ``at`` among all leaves up to the block's end; it only grows with the
tree. Every leaf before the first block whose maximum reaches the moment is earlier than it,
so the page starts there (``engine.store.merkle.since_start``). Filled here for a tree built
before this migration.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BLOCK = 1024  # engine.store.merkle.BLOCK when this migration was written


def upgrade() -> None:
    op.create_table(
        "merkle_blocks",
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("max_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("block"),
    )
    op.create_index("ix_merkle_blocks_max_at", "merkle_blocks", ["max_at", "block"])
    op.execute(
        "INSERT INTO merkle_blocks (block, max_at)"
        " SELECT block, max(top) OVER (ORDER BY block) FROM"
        f" (SELECT l.position / {BLOCK} AS block, max(e.at) AS top"
        "  FROM merkle_leaves AS l JOIN events AS e ON e.id = l.event_id"
        f"  GROUP BY l.position / {BLOCK} HAVING count(*) = {BLOCK}) AS b"
    )
    if op.get_bind().dialect.name == "postgresql":  # zizhi_append_only() comes from 0001
        op.execute(
            "CREATE TRIGGER merkle_blocks_append_only BEFORE UPDATE OR DELETE ON merkle_blocks "
            "FOR EACH ROW EXECUTE FUNCTION zizhi_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER merkle_blocks_no_{verb.lower()} BEFORE {verb} ON merkle_blocks "
                f"BEGIN SELECT RAISE(ABORT, 'merkle_blocks is append-only'); END"
            )


def downgrade() -> None:
    op.drop_index("ix_merkle_blocks_max_at", table_name="merkle_blocks")
    op.drop_table("merkle_blocks")
