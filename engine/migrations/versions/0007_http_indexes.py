"""Indexes for the audit feed's filters: ``type=`` and ``actor=``, each with ``id``.

``GET /api/v1/audit/events`` pages by ``id``; a filter that matches few events walked the
whole table in id order to find them (26–35 ms at 86k events, rising with the history).
With ``(type, id)`` and ``(actor, id)`` an exact filter reads only its own rows, already in
page order. (``since=``/``until=`` already have ``ix_events_at``.)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain CREATE INDEX, not a batch operation: on SQLite a batch could copy the table, and the
# events table's append-only triggers with it would have to be made again.
def upgrade() -> None:
    op.create_index("ix_events_type", "events", ["type", "id"], unique=False)
    op.create_index("ix_events_actor", "events", ["actor", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_actor", table_name="events")
    op.drop_index("ix_events_type", table_name="events")
