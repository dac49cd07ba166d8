"""Normal forms of compared identifiers: street and district names, payees, invoice numbers.

Each gets a ``*_key`` column holding its normal form — NFKC, case-folded, every whitespace
and invisible character removed — and the invoice's unique constraint moves onto the keys,
so ``３２０１００９９ `` and ``32010099`` are one invoice. Existing rows are normalised: street and
district names are cleaned (NFC, trimmed of whitespace and invisible characters) and every key
is computed. Expenses that turn out to be duplicates in normal form are not refused here (the
money was recorded long ago): each is reported and kept distinct by suffixing its invoice key
with ``#<expense id>``.

The rules are copied here, frozen as they were when this migration was written, so that a later
change of ``engine.text`` does not change what this migration did.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("zizhi.migrations")

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u3164\u115f\u1160\uffa0"
_TRIM = re.compile(rf"^[\s{_INVISIBLE}]+|[\s{_INVISIBLE}]+$")
_BLANKS = re.compile(rf"[\s{_INVISIBLE}]+")


def _clean(value: str) -> str:
    return _TRIM.sub("", re.sub(r"\r\n?", "\n", unicodedata.normalize("NFC", value)))


def _key(value: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return _BLANKS.sub("", folded)


def upgrade() -> None:
    with op.batch_alter_table("communities") as batch:
        batch.add_column(sa.Column("street_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("district_key", sa.Text(), nullable=True))
    with op.batch_alter_table("expenses") as batch:
        batch.add_column(sa.Column("payee_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("invoice_key", sa.Text(), nullable=True))

    conn = op.get_bind()
    communities = sa.table(
        "communities",
        sa.column("id"),
        sa.column("street"),
        sa.column("district"),
        sa.column("street_key"),
        sa.column("district_key"),
    )
    c = communities.c
    for place in conn.execute(sa.select(c.id, c.street, c.district)).all():
        street, district = _clean(place.street), _clean(place.district)
        conn.execute(
            sa.update(communities)
            .where(c.id == place.id)
            .values(
                street=street,
                district=district,
                street_key=_key(street),
                district_key=_key(district),
            )
        )

    expenses = sa.table(
        "expenses",
        sa.column("id"),
        sa.column("community_id"),
        sa.column("payee"),
        sa.column("invoice_no"),
        sa.column("payee_key"),
        sa.column("invoice_key"),
    )
    e = expenses.c
    first: dict[tuple[str, str, str], int] = {}
    rows = conn.execute(sa.select(e.id, e.community_id, e.payee, e.invoice_no).order_by(e.id)).all()
    for row in rows:
        payee_key, invoice_key = _key(row.payee), _key(row.invoice_no)
        same = (row.community_id, payee_key, invoice_key)
        if same in first:
            invoice_key = f"{invoice_key}#{row.id}"
            log.warning(
                "0004: expense %s duplicates expense %s in community %s once payee and invoice "
                "number are compared in normal form; kept, with invoice key %r",
                row.id,
                first[same],
                row.community_id,
                invoice_key,
            )
        else:
            first[same] = row.id
        conn.execute(
            sa.update(expenses)
            .where(e.id == row.id)
            .values(payee_key=payee_key, invoice_key=invoice_key)
        )

    with op.batch_alter_table("communities") as batch:
        batch.alter_column("street_key", existing_type=sa.Text(), nullable=False)
        batch.alter_column("district_key", existing_type=sa.Text(), nullable=False)
        batch.create_index("ix_communities_street_key", ["street_key"], unique=False)
        batch.create_index("ix_communities_district_key", ["district_key"], unique=False)
    with op.batch_alter_table("expenses") as batch:
        batch.alter_column("payee_key", existing_type=sa.Text(), nullable=False)
        batch.alter_column("invoice_key", existing_type=sa.Text(), nullable=False)
        batch.drop_constraint("uq_expenses_invoice", type_="unique")
        batch.create_unique_constraint(
            "uq_expenses_invoice_key", ["community_id", "payee_key", "invoice_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("expenses") as batch:
        batch.drop_constraint("uq_expenses_invoice_key", type_="unique")
        batch.create_unique_constraint(
            "uq_expenses_invoice", ["community_id", "payee", "invoice_no"]
        )
        batch.drop_column("invoice_key")
        batch.drop_column("payee_key")
    with op.batch_alter_table("communities") as batch:
        batch.drop_index("ix_communities_district_key")
        batch.drop_index("ix_communities_street_key")
        batch.drop_column("district_key")
        batch.drop_column("street_key")
