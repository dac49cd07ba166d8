"""A community's expenses in id order: ``expenses (community_id, id)``.

``verify`` compares each community's expenses, in id order, with the rows its history says
it must have; the unique key ``(community_id, payee_key, invoice_key)`` finds them but not in
that order, so a planner could as well walk the whole table by id for each community. Demands
and projects have had the same index since 0001.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_expenses_community", "expenses", ["community_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_expenses_community", table_name="expenses")
