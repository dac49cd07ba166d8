"""The menu project library: a project names its menu item (issue 12).

Projects opened before keep their free-text category and no item (``menu_item`` is NULL);
reports count them under the category their text names, or as unclassified. Nothing else
changes, so the migration is one nullable column (no index: nothing looks projects up by it).

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
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("menu_item", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("menu_item")
