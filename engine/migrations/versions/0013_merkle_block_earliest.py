"""``until=`` pages: the earliest event time of each block of 256 Merkle leaves, beside the latest.

A page ``until=`` a moment, like one ``since=`` it, is ordered by the feed, not by time: once
past the last event before the moment, it read the rest of the feed to learn there was no
more (150 ms at a million events, on every last page). ``merkle_blocks`` now also holds the
earliest ``at`` of each complete block: a block whose earliest time is at or after the moment
holds nothing to show (``engine.store.merkle.time_ranges``). The table is derived from the
tree and append-only, so it is built again here with both columns, for any tree already there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BLOCK = 256  # engine.store.merkle.BLOCK when this migration was written
_OF = {"min_at": "min(e.at)", "max_at": "max(e.at)"}


def _blocks(*times: str) -> None:
    """``merkle_blocks`` with the given time columns, filled from the tree, append-only."""
    op.create_table(
        "merkle_blocks",
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        *(sa.Column(name, sa.DateTime(timezone=True), nullable=False) for name in times),
        sa.PrimaryKeyConstraint("block"),
    )
    for name in times:
        op.create_index(f"ix_merkle_blocks_{name}", "merkle_blocks", [name, "block"])
    picked = ", ".join(_OF[name] for name in times)
    op.execute(
        f"INSERT INTO merkle_blocks (block, {', '.join(times)})"
        f" SELECT l.position / {BLOCK}, {picked}"
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


def upgrade() -> None:
    op.drop_table("merkle_blocks")  # its triggers and indexes with it
    _blocks("min_at", "max_at")


def downgrade() -> None:
    op.drop_table("merkle_blocks")
    _blocks("max_at")
