"""Migration 0004 on a database written by the previous version: names cleaned, keys computed,
and duplicates in normal form reported and kept distinct rather than failing the upgrade.

The rows are inserted by hand here — the one place a test must: they stand for what the
previous version stored, which today's engine would refuse to write.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import engine
from engine.errors import AlreadyExists
from engine.model import CLI
from engine.rules.workflow import WorkflowRegistry
from engine.store.db import Database
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World

MIGRATIONS = Path(engine.__file__).parent / "migrations"
AT = datetime(2026, 3, 1, tzinfo=UTC)


def _upgrade(db: Database, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, target)
        conn.commit()


def _old_rows(db: Database) -> None:
    """What the previous version could store: uncleaned street names, invoices that differ
    only in width, case, spaces or invisible characters."""
    communities = sa.table(
        "communities", *(sa.column(n) for n in ("id", "name", "street", "district", "kind"))
    )
    communities.append_column(sa.column("created_at", sa.DateTime(timezone=True)))
    expenses = sa.table(
        "expenses",
        *(sa.column(n) for n in ("id", "community_id", "project_id", "amount_fen")),
        *(sa.column(n) for n in ("payee", "invoice_no", "description")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    with db.write() as conn:
        conn.execute(
            sa.insert(communities),
            [
                {
                    "id": "old1",
                    "name": "老社区",
                    "street": "街道一\u3000",
                    "district": " 姑苏区",
                    "kind": "urban",
                    "created_at": AT,
                },
                {
                    "id": "old2",
                    "name": "另一社区",
                    "street": "街道一\u200b",
                    "district": "姑苏区",
                    "kind": "urban",
                    "created_at": AT,
                },
            ],
        )
        rows = [
            (1, "old1", "施工队", "32010099"),
            (2, "old1", "施工队", "３２０１００９９ "),
            (3, "old1", "施工队 ", "32010099\u200b"),
            (4, "old1", "P", "a1"),
            (5, "old1", "p ", "A1"),
            (6, "old1", "施工队", "32010098"),
            (7, "old2", "施工队", "32010099"),  # another community: no duplicate
        ]
        conn.execute(
            sa.insert(expenses),
            [
                {
                    "id": i,
                    "community_id": c,
                    "project_id": 1,
                    "amount_fen": 100,
                    "payee": payee,
                    "invoice_no": invoice,
                    "description": "材料",
                    "created_at": AT,
                }
                for i, c, payee, invoice in rows
            ],
        )
        conn.commit()


def test_0004_normalises_existing_rows_and_reports_duplicates(
    backend: str,
    databases: DatabaseFactory,
    registry: WorkflowRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = Database(databases.url(backend))
    databases._made.append((backend, db))  # disposed (and dropped) with the others at the end
    _upgrade(db, "0001")
    _old_rows(db)
    with caplog.at_level(logging.WARNING, logger="zizhi.migrations"):
        db.migrate()
    reported = [r.getMessage() for r in caplog.records if r.name == "zizhi.migrations"]
    assert len(reported) == 3, reported
    assert all("duplicates expense" in line for line in reported)
    with db.read() as conn:
        places = conn.execute(
            sa.text("SELECT id, street, district, street_key FROM communities ORDER BY id")
        ).all()
        keys = conn.execute(
            sa.text("SELECT id, payee_key, invoice_key FROM expenses ORDER BY id")
        ).all()
    assert [tuple(p) for p in places] == [
        ("old1", "街道一", "姑苏区", "街道一"),
        ("old2", "街道一", "姑苏区", "街道一"),
    ]
    assert [tuple(k) for k in keys] == [
        (1, "施工队", "32010099"),
        (2, "施工队", "32010099#2"),
        (3, "施工队", "32010099#3"),
        (4, "p", "a1"),
        (5, "p", "a1#5"),
        (6, "施工队", "32010098"),
        (7, "施工队", "32010099"),
    ]
    # From now on the engine holds the rule: one street for its officer, one invoice.
    z = Zizhi(db, registry)
    officer = World.street_officer("街道一")
    assert [c.id for c in engine.list_communities(z, officer).items] == ["old1", "old2"]
    world = World(z)
    committee = world.committee("old1")
    project = world.advance(world.project("old1"), "implementation", budget_fen=10_000)
    with pytest.raises(AlreadyExists):
        engine.record_expense(
            z,
            committee,
            project.id,
            {
                "amount_fen": 1,
                "payee": "施工队",
                "invoice_no": "３２０１００９９",
                "description": "x",
            },
        )
    assert engine.fire(z, committee, project.id, "complete_implementation", {"report": "完成"})
    # The old rows were inserted by hand, without the history events that made them: verify
    # (which rebuilds every fact row from the history) names the first of them.
    report = engine.verify(z, CLI)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad["reason"] == "社区 old1 在历史中没有记录（被人为添加或改动）"


def test_0012_computes_names_and_keys_again_with_more_invisible_characters(
    backend: str,
    databases: DatabaseFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows as 0004's rules left them: a soft hyphen, a left-to-right mark or a braille blank
    counted as a character, so ``a1\\u00ad`` was another invoice than ``a1``."""
    db = Database(databases.url(backend))
    databases._made.append((backend, db))
    _upgrade(db, "0011")
    with db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO communities (id, name, street, district, kind, created_at,"
                " street_key, district_key) VALUES (:id, '社区', :street, '姑苏区', 'urban', :at,"
                " :key, '姑苏区')"
            ),
            [
                {"id": "old1", "street": "街道二\u200e", "key": "街道二\u200e", "at": AT},
                {"id": "old2", "street": "街道二", "key": "街道二", "at": AT},
            ],
        )
        rows = [
            (1, "施工队", "a1", "施工队", "a1"),
            (2, "施工队", "a1\u00ad", "施工队", "a1\u00ad"),  # the same invoice, now
            (3, "施工队\u2800", "a1", "施工队\u2800", "a1"),  # the same payee, now
            (4, "施工队", "A1 ", "施工队", "a1#4"),  # 0004 kept it apart already
            (5, "施工队", "a2\u200f", "施工队", "a2\u200f"),  # no other: its key is cleaned
            # In another community the older row takes the key the newer one held
            (6, "物业", "b7\u2063", "物业", "b7\u2063"),
            (7, "物业", "b7", "物业", "b7"),
        ]
        conn.execute(
            sa.text(
                "INSERT INTO expenses (id, community_id, project_id, amount_fen, payee,"
                " invoice_no, description, created_at, payee_key, invoice_key)"
                " VALUES (:id, :c, 1, 100, :payee, :invoice, '材料', :at, :pk, :ik)"
            ),
            [
                {
                    "id": i,
                    "c": "old1" if i < 6 else "old2",
                    "payee": p,
                    "invoice": n,
                    "pk": pk,
                    "ik": ik,
                    "at": AT,
                }
                for i, p, n, pk, ik in rows
            ],
        )
        conn.commit()
    with caplog.at_level(logging.WARNING, logger="zizhi.migrations"):
        db.migrate()
    reported = [r.getMessage() for r in caplog.records if r.name == "zizhi.migrations"]
    assert len(reported) == 3, reported
    assert all(line.startswith("0012: expense") for line in reported)
    with db.read() as conn:
        places = conn.execute(
            sa.text("SELECT id, street, street_key FROM communities ORDER BY id")
        ).all()
        keys = conn.execute(
            sa.text("SELECT id, payee_key, invoice_key FROM expenses ORDER BY id")
        ).all()
    assert [tuple(p) for p in places] == [
        ("old1", "街道二", "街道二"),
        ("old2", "街道二", "街道二"),
    ]
    assert [tuple(k) for k in keys] == [
        (1, "施工队", "a1"),
        (2, "施工队", "a1#2"),
        (3, "施工队", "a1#3"),
        (4, "施工队", "a1#4"),
        (5, "施工队", "a2"),
        (6, "物业", "b7"),
        (7, "物业", "b7#7"),
    ]
