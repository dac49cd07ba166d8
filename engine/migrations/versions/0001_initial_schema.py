"""Initial schema: places, projects, demands, expenses, the ledger and the history.

The history (events) and the ledger (ledger_entries) are append-only: triggers make the
database itself refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on them.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("events", "ledger_entries")
SYSTEM_CHAIN = "_system"
# sha256("zizhi:_system"): the genesis hash of the system chain (engine.history.genesis_hash).
SYSTEM_GENESIS = "57ad761da9b5c1128b23cdb5383e5daad47cf96a2c93c5807e26bd659f869d69"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("communities", sa.Text(), nullable=False),
        sa.Column("streets", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "chain_heads",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("street", sa.String(length=64), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_communities_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_communities_street"), ["street"], unique=False)

    op.create_table(
        "demands",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("resident", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.create_index("ix_demands_community", ["community_id", "id"], unique=False)
        batch_op.create_index("ix_demands_project", ["project_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain", "seq", name="uq_events_chain_seq"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_at", ["at"], unique=False)
        batch_op.create_index("ix_events_community", ["community_id", "id"], unique=False)
        batch_op.create_index("ix_events_project", ["project_id", "id"], unique=False)

    op.create_table(
        "expenses",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("invoice_no", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "payee", "invoice_no", name="uq_expenses_invoice"),
    )
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.create_index("ix_expenses_project", ["project_id"], unique=False)

    op.create_table(
        "fund_accounts",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("fund", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("allocated_fen", sa.BigInteger(), nullable=False),
        sa.Column("reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("spent_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "reserved_fen >= 0 AND spent_fen >= 0 AND reserved_fen + spent_fen <= allocated_fen",
            name="ck_fund_accounts_cap",
        ),
        sa.PrimaryKeyConstraint("community_id", "fund", "year"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result_kind", sa.String(length=32), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("fund", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allocated_fen", sa.BigInteger(), nullable=False),
        sa.Column("reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("spent_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entries_account", ["community_id", "fund", "year", "id"], unique=False
        )
        batch_op.create_index("ix_ledger_entries_project", ["project_id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("workflow", sa.String(length=64), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("fund", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=True),
        sa.Column("reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("spent_fen", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reserved_fen >= 0 AND spent_fen >= 0", name="ck_projects_money"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("ix_projects_community", ["community_id", "id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("communities", sa.Text(), nullable=False),
        sa.Column("streets", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )

    _append_only_triggers()
    op.bulk_insert(
        sa.table("chain_heads", sa.column("chain"), sa.column("seq"), sa.column("hash")),
        [{"chain": SYSTEM_CHAIN, "seq": 0, "hash": SYSTEM_GENESIS}],
    )


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        return
    op.execute(
        "CREATE FUNCTION zizhi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME "
        "USING ERRCODE = 'insufficient_privilege'; END $$"
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION zizhi_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION zizhi_append_only()"
        )


def downgrade() -> None:
    op.drop_table("users")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_community")

    op.drop_table("projects")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_project")
        batch_op.drop_index("ix_ledger_entries_account")

    op.drop_table("ledger_entries")
    op.drop_table("idempotency_keys")
    op.drop_table("fund_accounts")
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.drop_index("ix_expenses_project")

    op.drop_table("expenses")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_project")
        batch_op.drop_index("ix_events_community")
        batch_op.drop_index("ix_events_at")

    op.drop_table("events")
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_index("ix_demands_project")
        batch_op.drop_index("ix_demands_community")

    op.drop_table("demands")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_communities_street"))
        batch_op.drop_index(batch_op.f("ix_communities_district"))

    op.drop_table("communities")
    op.drop_table("chain_heads")
    op.drop_table("api_tokens")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION zizhi_append_only()")
