"""More characters count as invisible: names and keys computed again.

``engine.text`` now takes every default-ignorable character of the BMP (soft hyphen, the
left-to-right and right-to-left marks, the invisible operators…) and the braille blank as
invisible, and composes a key once more after its blanks are removed. Street and district
names are cleaned again and every key is computed again, so that ``a1\\u00ad`` is the invoice
``a1`` and verify, which rebuilds these columns with today's rules, finds what it expects.
As in 0004, expenses that turn out to be duplicates are not refused (the money was recorded
long ago): each is reported and kept distinct by suffixing its invoice key with
``#<expense id>``. Only rows whose values change are written.

The rules are copied here, frozen as they were when this migration was written.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger("zizhi.migrations")

_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c\u206d\u206e\u206f\u2800\u3164"
    "\ufeff\uffa0"
)
_TRIM = re.compile(rf"^[\s{_INVISIBLE}]+|[\s{_INVISIBLE}]+$")
_BLANKS = re.compile(rf"[\s{_INVISIBLE}]+")


def _clean(value: str) -> str:
    return _TRIM.sub("", re.sub(r"\r\n?", "\n", unicodedata.normalize("NFC", value)))


def _key(value: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return unicodedata.normalize("NFKC", _BLANKS.sub("", folded))


def upgrade() -> None:
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
    for place in conn.execute(
        sa.select(c.id, c.street, c.district, c.street_key, c.district_key)
    ).all():
        street, district = _clean(place.street), _clean(place.district)
        now = {
            "street": street,
            "district": district,
            "street_key": _key(street),
            "district_key": _key(district),
        }
        if now != {name: getattr(place, name) for name in now}:
            conn.execute(sa.update(communities).where(c.id == place.id).values(**now))

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
    changed: dict[int, tuple[str, str]] = {}
    rows = conn.execute(
        sa.select(e.id, e.community_id, e.payee, e.invoice_no, e.payee_key, e.invoice_key).order_by(
            e.id
        )
    ).all()
    for row in rows:
        payee_key, invoice_key = _key(row.payee), _key(row.invoice_no)
        same = (row.community_id, payee_key, invoice_key)
        if same in first:
            invoice_key = f"{invoice_key}#{row.id}"
            if (row.payee_key, row.invoice_key) != (payee_key, invoice_key):
                log.warning(
                    "0012: expense %s duplicates expense %s in community %s once payee and "
                    "invoice number are compared in normal form; kept, with invoice key %r",
                    row.id,
                    first[same],
                    row.community_id,
                    invoice_key,
                )
        else:
            first[same] = row.id
        if (row.payee_key, row.invoice_key) != (payee_key, invoice_key):
            changed[row.id] = (payee_key, invoice_key)
    # Out of the way first, so that no row takes a key another still holds for a moment
    # (the unique constraint is checked row by row on PostgreSQL).
    for expense_id in changed:
        conn.execute(
            sa.update(expenses).where(e.id == expense_id).values(invoice_key=f"#0012-{expense_id}")
        )
    for expense_id, (payee_key, invoice_key) in changed.items():
        conn.execute(
            sa.update(expenses)
            .where(e.id == expense_id)
            .values(payee_key=payee_key, invoice_key=invoice_key)
        )


def downgrade() -> None:
    """Names and keys are left as they are: what was trimmed cannot be put back. Under 0011's
    code only rows that held one of the characters added here differ from what it computes."""
