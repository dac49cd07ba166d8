"""``since=`` pages: the latest event time of each block of 256 Merkle leaves.

An audit page ``since=`` a moment is ordered by the feed, not by time, so without help it
reads the feed from its start until it meets events that late — most of the table for a
recent moment. ``merkle_blocks`` holds, for each complete block of
``engine.store.merkle.BLOCK`` leaves, the latest ``at`` among them; it only grows with the
tree. A block whose latest time is before the moment holds nothing to show, so the page
reads only the blocks that reach it and what lies past the last complete block
(``engine.store.merkle.since_ranges``). Filled here for a tree built before this migration.

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

BLOCK = 256  # engine.store.merkle.BLOCK when this migration was written


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
        f" SELECT l.position / {BLOCK}, max(e.at)"
        " FROM merkle_leaves AS l JOIN events AS e ON e.id = l.event_id"
        f" GROUP BY l.position / {BLOCK} HAVING count(*) = {BLOCK}"
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
