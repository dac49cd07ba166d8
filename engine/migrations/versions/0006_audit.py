"""Residents' personal data erasable (PIPL): a demand's salt and the moment it was erased.

A demand's ``demand.created`` event commits to a salted sha256 of the resident's name and
contact (never the text); the salt lives in the demand's row with the text and is erased with
it, so after erasure the commitment no longer leads back to anyone. ``resident`` becomes
nullable: an erased demand keeps its content and its place in the history, not its person.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.alter_column("resident", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("personal_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("personal_salt")
        batch_op.alter_column("resident", existing_type=sa.String(length=64), nullable=False)
