"""Residents' personal data erasable (PIPL), and the access log (who looked at what).

A demand's ``demand.created`` event commits to a salted sha256 of the resident's name and
contact (never the text); the salt lives in the demand's row with the text and is erased with
it, so after erasure the commitment no longer leads back to anyone. ``resident`` becomes
nullable: an erased demand keeps its content and its place in the history, not its person.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.alter_column("resident", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("personal_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "access_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_log_actor", "access_log", ["actor", "id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER access_log_no_{verb.lower()} BEFORE {verb} ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END"
            )
    else:  # zizhi_append_only() is migration 0001's
        op.execute(
            "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION zizhi_append_only()"
        )
        op.execute(
            "CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION zizhi_append_only()"
        )


def downgrade() -> None:
    op.drop_index("ix_access_log_actor", table_name="access_log")
    op.drop_table("access_log")
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("personal_salt")
        batch_op.alter_column("resident", existing_type=sa.String(length=64), nullable=False)
