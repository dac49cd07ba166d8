"""Alembic environment: runs on the connection ``Database.migrate`` hands it.

For ``alembic revision --autogenerate`` from a checkout, set ZIZHI_DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context

from engine.store.db import Database
from engine.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # the alembic command line
    db = Database(os.environ.get("ZIZHI_DATABASE_URL", "sqlite:///zizhi.db"))
    with db.engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
