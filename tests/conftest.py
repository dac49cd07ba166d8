"""Test databases: every database-backed test runs on a real SQLite file and on PostgreSQL.

``--db=sqlite|postgresql|all`` (default ``all``, or ``$ZIZHI_TEST_DB``) picks the backends.
PostgreSQL tests create a fresh database per run (and per xdist worker) through the server
at ``$ZIZHI_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and drop it afterwards. An unreachable server is an error, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from engine.rules.workflow import WorkflowRegistry
from engine.store.db import Database, normalize_url
from engine.store.uow import Zizhi
from tests.factories import World
from workflows import load_registry

BACKENDS = ("sqlite", "postgresql")

# Hypothesis budgets: "ci" (the default) is bounded for every commit; run nightly with
# --hypothesis-profile=soak. Tests that build a database per example take a fraction.
settings.register_profile(
    "ci",
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "soak", settings.get_profile("ci"), max_examples=5000, stateful_step_count=80, derandomize=False
)
settings.load_profile("ci")
ADMIN_URL = os.environ.get(
    "ZIZHI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=[*BACKENDS, "all"],
        default=os.environ.get("ZIZHI_TEST_DB", "all"),
        help="which databases to run the suite on (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        backends = list(BACKENDS) if choice == "all" else [choice]
        metafunc.parametrize("backend", backends, scope="session")


class DatabaseFactory:
    """Creates empty, migrated databases of either kind and removes them at the end."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._made: list[tuple[str, Database]] = []
        self._created: list[str] = []  # every PostgreSQL database made, by url() or new()

    def url(self, backend: str) -> str:
        name = f"zizhi_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{self._tmp / (name + '.db')}"
        admin = sa.create_engine(normalize_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            self._created.append(name)
        except sa.exc.OperationalError as exc:
            raise RuntimeError(
                f"PostgreSQL is not reachable at {ADMIN_URL}: start it, set "
                "ZIZHI_TEST_POSTGRES_URL, or run with --db=sqlite"
            ) from exc
        finally:
            admin.dispose()
        return str(
            sa.make_url(normalize_url(ADMIN_URL))
            .set(database=name)
            .render_as_string(hide_password=False)
        )

    def new(self, backend: str) -> Database:
        db = Database(self.url(backend))
        db.migrate()
        self._made.append((backend, db))
        return db

    def close_since(self, mark: int) -> None:
        """Close the pooled connections of the PostgreSQL databases made since ``mark`` (a
        ``len(made)`` taken earlier). The databases stay, and reconnect if used again; the
        server's connection slots (100 by default) are not held by finished tests."""
        for backend, db in self._made[mark:]:
            if backend == "postgresql":
                db.dispose()

    @property
    def made(self) -> int:
        return len(self._made)

    def drop_all(self) -> None:
        """Dispose every Database made, and drop every PostgreSQL database created — also
        those a test opened itself from ``url()``."""
        for _, db in self._made:
            db.dispose()
        if not self._created:
            return
        admin = sa.create_engine(normalize_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for name in self._created:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("db"))
    yield factory
    factory.drop_all()


@pytest.fixture(autouse=True)
def _close_test_databases(databases: DatabaseFactory) -> Iterator[None]:
    """Each test's own PostgreSQL databases give their connections back when it ends."""
    mark = databases.made
    yield
    databases.close_since(mark)


@pytest.fixture(scope="session")
def database(backend: str, databases: DatabaseFactory) -> Database:
    """One database per backend for the session; tests keep apart by their own communities."""
    return databases.new(backend)


@pytest.fixture(scope="session")
def registry() -> WorkflowRegistry:
    return load_registry()


@pytest.fixture
def z(database: Database, registry: WorkflowRegistry) -> Zizhi:
    return Zizhi(database, registry)


@pytest.fixture
def fresh_z(backend: str, databases: DatabaseFactory, registry: WorkflowRegistry) -> Zizhi:
    """An empty database of its own, for tests that look at (or damage) the whole of it."""
    return Zizhi(databases.new(backend), registry)


@pytest.fixture
def world(z: Zizhi) -> World:
    return World(z)
