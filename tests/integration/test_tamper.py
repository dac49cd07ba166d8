"""Any single-column edit of any fact row, by raw SQL, is refused or reported by verify.

One history with every kind of fact (communities, projects with budgets and expenses,
demands from the pool, the public and erased, allocations, a closed and a reopened year) is
built once per database. Each case then edits one column of one row (or removes the row)
inside a transaction, runs the whole verification in that same transaction, and rolls back:
the database must refuse the edit, or verify must name a fault. Events and ledger entries,
which the database refuses to change, are also edited with their triggers disabled — what
someone with full control of the database could do — and verify must still see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import engine
from engine.model import CLI, Principal, Role, fiscal_year
from engine.rules.workflow import WorkflowRegistry
from engine.store.facts import verify_all
from engine.store.tables import (
    UTCDateTime,
    api_tokens,
    chain_heads,
    closed_years,
    communities,
    demands,
    events,
    expenses,
    fund_accounts,
    ledger_entries,
    projects,
    users,
)
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World


@dataclass(frozen=True)
class Built:
    z: Zizhi
    targets: dict[str, sa.ColumnElement[bool]]  # table → WHERE picking the row to edit


@pytest.fixture(scope="module")
def built(backend: str, databases: DatabaseFactory, registry: WorkflowRegistry) -> Built:
    z = Zizhi(databases.new(backend), registry)
    world = World(z)
    a, b = world.community(), world.community(kind="rural")
    committee = world.committee(a)
    year = fiscal_year(z.clock())
    engine.set_allocation(z, CLI, a, "self_governance", year, 6_000_000)
    p1 = world.advance(world.project(a), "implementation", budget_fen=500_000)
    expense = engine.record_expense(
        z,
        committee,
        p1.id,
        {
            "amount_fen": 200_000,
            "payee": "苏州某物业",
            "invoice_no": "3201 0099",
            "description": "清运",
        },
    )
    pooled = engine.record_demand(
        z, committee, a, {"content": "楼道灯坏了", "resident": "李阿姨", "contact": "13800000000"}
    )
    engine.record_demand(z, None, a, {"content": "希望加装扶手", "resident": "张先生"})
    erased = engine.record_demand(
        z, committee, a, {"content": "健身器材", "resident": "赵女士", "contact": "微信 zhao"}
    )
    engine.erase_personal_data(z, CLI, a, erased.id)
    p2 = world.project(a)
    engine.add_to_project(z, committee, p2.id, {"demand_id": pooled.id})
    world.advance(world.project(b), "planning")
    engine.close_year(z, CLI, 2024)
    engine.reopen_year(z, CLI, 2024)
    engine.close_year(z, CLI, 2025)
    token = engine.create_token(z, CLI, name="审计", role="auditor", communities=[a])
    engine.revoke_token(z, CLI, token.id)
    engine.create_user(
        z,
        CLI,
        username="jinchang",
        password="a long password",
        role="street",
        streets=[world.street_of(a)],
    )
    transition = (
        sa.select(sa.func.min(events.c.id))
        .where(events.c.project_id == p1.id, events.c.type == "project.transitioned")
        .scalar_subquery()
    )
    reserve = (
        sa.select(sa.func.min(ledger_entries.c.id))
        .where(ledger_entries.c.project_id == p1.id, ledger_entries.c.kind == "reserve")
        .scalar_subquery()
    )
    report = engine.verify(z, CLI)
    assert report.ok, report.first_bad
    return Built(
        z,
        {
            "communities": communities.c.id == a,
            "projects": projects.c.id == p1.id,
            "demands": demands.c.id == pooled.id,
            "expenses": expenses.c.id == expense.id,
            "closed_years": closed_years.c.year == 2025,
            "fund_accounts": sa.and_(
                fund_accounts.c.community_id == a,
                fund_accounts.c.fund == "self_governance",
                fund_accounts.c.year == year,
            ),
            "events": events.c.id == transition,
            "ledger_entries": ledger_entries.c.id == reserve,
            "chain_heads": chain_heads.c.chain == a,
            "api_tokens": api_tokens.c.id == token.id,
            "users": users.c.username == "jinchang",
        },
    )


FACT_TABLES = [communities, projects, demands, expenses, closed_years, fund_accounts, chain_heads]
FACT_TABLES += [api_tokens, users]
HISTORY_TABLES = [events, ledger_entries]
# The secrets' hashes are never in the history, so nothing there can vouch for them.
UNRECORDED = {("api_tokens", "token_hash"), ("users", "password_hash")}
# An event's xid is its place in the feed (PostgreSQL's transaction id), not a fact: no hash
# covers it, and moving it only reorders the feed, which the signed checkpoints commit to —
# `verify --checkpoint` catches that edit (tests/integration/test_checkpoints.py).
FEED_POSITION = {("events", "xid")}
CASES = [
    (table.name, column.name)
    for table in [*FACT_TABLES, *HISTORY_TABLES]
    for column in table.columns
    if (table.name, column.name) not in UNRECORDED | FEED_POSITION
]


def _changed(column: sa.Column[Any], dialect: str) -> sa.ColumnElement[Any]:
    """A different value for the column, whatever its type and whether or not it is NULL."""
    if isinstance(column.type, UTCDateTime):
        if dialect == "sqlite":
            return sa.func.coalesce(
                sa.func.strftime("%Y-%m-%d %H:%M:%f", column, "+1 seconds"), "2026-01-01 00:00:00"
            )
        return sa.func.coalesce(column + sa.text("interval '1 second'"), sa.func.now())
    if isinstance(column.type, sa.Integer):
        unique = column.primary_key or column.name == "seq"  # (chain, seq) is unique
        return sa.func.coalesce(column + 100_000 if unique else column + 1, 1)
    if getattr(column.type, "length", None):  # keep within VARCHAR(n): replace the first char
        first_changed = sa.case((sa.func.substr(column, 1, 1) == "x", "y"), else_="x").concat(
            sa.func.substr(column, 2)
        )
        return sa.func.coalesce(first_changed, "x")
    return sa.func.coalesce(column.concat("x"), "x")


def _fault_after(z: Zizhi, statement: sa.Executable, *, unguarded: bool = False) -> tuple[str, Any]:
    """Run the edit and verify in one transaction, then roll back: what happened."""
    with z.db.write() as conn:
        if unguarded:
            _drop_append_only_guard(conn)
        try:
            changed = conn.execute(statement).rowcount
        except sa.exc.DatabaseError as exc:
            return "refused", str(exc.orig)
        assert changed == 1, "the case must change exactly one row"
        _, fault = verify_all(conn)
        return "verified", fault


def _drop_append_only_guard(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for table in ("events", "ledger_entries"):
            for verb in ("update", "delete"):
                conn.execute(sa.text(f"DROP TRIGGER {table}_{'no_' + verb}"))
    else:
        for table in ("events", "ledger_entries"):
            conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def _table(name: str) -> sa.Table:
    return next(t for t in [*FACT_TABLES, *HISTORY_TABLES] if t.name == name)


@pytest.mark.parametrize(("table_name", "column_name"), CASES)
def test_an_edit_of_any_column_is_refused_or_reported(
    built: Built, table_name: str, column_name: str
) -> None:
    table = _table(table_name)
    column = table.c[column_name]
    edit = (
        sa.update(table)
        .where(built.targets[table_name])
        .values({column_name: _changed(column, built.z.db.engine.dialect.name)})
    )
    outcome, detail = _fault_after(built.z, edit)
    if table in HISTORY_TABLES:
        assert outcome == "refused" and "append-only" in detail
    else:
        assert outcome == "verified" and detail is not None, f"{table_name}.{column_name}"


@pytest.mark.parametrize(
    ("table_name", "column_name"),
    [c for c in CASES if c[0] in {t.name for t in HISTORY_TABLES}],
)
def test_an_edit_of_history_under_disabled_triggers_is_reported(
    built: Built, table_name: str, column_name: str
) -> None:
    table = _table(table_name)
    edit = (
        sa.update(table)
        .where(built.targets[table_name])
        .values({column_name: _changed(table.c[column_name], built.z.db.engine.dialect.name)})
    )
    outcome, fault = _fault_after(built.z, edit, unguarded=True)
    assert outcome == "verified" and fault is not None, f"{table_name}.{column_name}"


@pytest.mark.parametrize("table_name", [t.name for t in [*FACT_TABLES, *HISTORY_TABLES]])
def test_removing_any_row_is_refused_or_reported(built: Built, table_name: str) -> None:
    table = _table(table_name)
    outcome, detail = _fault_after(built.z, sa.delete(table).where(built.targets[table_name]))
    if table in HISTORY_TABLES:
        assert outcome == "refused" and "append-only" in detail
        outcome, detail = _fault_after(
            built.z, sa.delete(table).where(built.targets[table_name]), unguarded=True
        )
    assert outcome == "verified" and detail is not None


def test_a_row_added_by_hand_is_reported(built: Built) -> None:
    with built.z.db.write() as conn:
        row = conn.execute(sa.select(expenses).where(built.targets["expenses"])).one()
        conn.execute(
            sa.insert(expenses).values(
                {**row._mapping, "id": row.id + 1000, "invoice_key": "forged", "payee_key": "x"}
            )
        )
        _, fault = verify_all(conn)
    assert fault is not None and "在历史中没有记录" in fault.reason


def test_the_issue_s_probes_are_reported_by_the_verify_use_case(fresh_z: Zizhi) -> None:
    """``UPDATE expenses SET amount_fen=99999`` and ``DELETE FROM closed_years``, committed."""
    world = World(fresh_z)
    community = world.community()
    project = world.advance(world.project(community), "implementation", budget_fen=500_000)
    engine.record_expense(
        fresh_z,
        world.committee(community),
        project.id,
        {"amount_fen": 1000, "payee": "某公司", "invoice_no": "A1", "description": "材料"},
    )
    engine.close_year(fresh_z, CLI, 2025)
    assert engine.verify(fresh_z, CLI).ok
    for statement, undo, reason in [
        ("UPDATE expenses SET amount_fen = 99999", "UPDATE expenses SET amount_fen = 1000", "支出"),
        ("DELETE FROM closed_years", None, "2025 年度"),
    ]:
        with fresh_z.db.write() as conn:
            conn.execute(sa.text(statement))
            conn.commit()
        report = engine.verify(fresh_z, CLI)
        assert not report.ok and report.first_bad is not None
        assert reason in report.first_bad["reason"]
        if undo is not None:
            with fresh_z.db.write() as conn:
                conn.execute(sa.text(undo))
                conn.commit()
            assert engine.verify(fresh_z, CLI).ok


@pytest.fixture
def two_communities(fresh_z: Zizhi) -> Iterator[tuple[Zizhi, str, str]]:
    world = World(fresh_z)
    yield fresh_z, world.community(street="街道甲"), world.community(street="街道乙")


def test_verify_is_scoped_to_the_auditor_s_communities(
    two_communities: tuple[Zizhi, str, str],
) -> None:
    z, mine, theirs = two_communities
    world = World(z)
    world.advance(world.project(mine), "review")
    world.advance(world.project(theirs), "review")
    with z.db.write() as conn:
        conn.execute(sa.update(projects).where(projects.c.community_id == theirs).values(title="x"))
        conn.commit()
    scoped = Principal(
        id="token:scoped", name="审计", role=Role.auditor, communities=frozenset({mine})
    )
    by_street = Principal(
        id="token:street-auditor", name="审计", role=Role.auditor, streets=frozenset({"街道甲"})
    )
    for auditor in (scoped, by_street):
        report = engine.verify(z, auditor)
        assert report.ok, report.first_bad
        # Its own chain only: the community's creation, project, demand, three steps.
        assert report.checked == 6
    whole = engine.verify(z, CLI)
    assert not whole.ok and whole.first_bad is not None
    assert whole.first_bad["chain"] == theirs
    told = Principal(
        id="token:other", name="审计", role=Role.auditor, communities=frozenset({theirs})
    )
    assert engine.verify(z, told).first_bad == whole.first_bad
