"""The schema's migrations as ``Database.migrate`` finds them without loading Alembic."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from engine.store.db import MIGRATIONS, NEWEST_REVISION, Database
from tests.conftest import DatabaseFactory


def test_each_migration_is_named_by_its_revision_and_the_newest_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [NEWEST_REVISION]
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert re.fullmatch(rf"{script.revision}_\w+\.py", script.path.rsplit("/", 1)[-1])


def test_a_schema_at_the_newest_migration_is_left_alone_and_an_older_one_upgraded(
    backend: str, databases: DatabaseFactory
) -> None:
    db: Database = databases.new(backend)
    assert db.schema_revision() == [NEWEST_REVISION]
    db.migrate()  # nothing to do: one read
    with db.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0011'"))
        conn.commit()
    assert db.schema_revision() == ["0011"]
    db.migrate()  # 0012 runs again (it only rewrites what its rules would change)
    assert db.schema_revision() == [NEWEST_REVISION]


def test_an_empty_database_has_no_schema_until_migrated(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/empty.db")
    try:
        assert db.schema_revision() is None
        db.migrate()
        assert db.schema_revision() == [NEWEST_REVISION]
    finally:
        db.dispose()
