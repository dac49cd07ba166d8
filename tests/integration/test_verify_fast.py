"""The fast verification reads what the slow one read, and checking on two processes reports
what checking on one reports.

``engine.store.verify_read`` reads times as their ``iso`` text computed in SQL, and
``engine.store.verify_parallel`` splits the communities between two processes sharing one
snapshot; the tamper tests (``test_tamper.py``) hold the one-process path to every edit.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine.model import CLI, Principal, Role, fiscal_year
from engine.rules.workflow import WorkflowRegistry
from engine.store.facts import verify_all, verify_facts
from engine.store.history import SYSTEM_CHAIN, ChainWriter, iso
from engine.store.tables import (
    UTCDateTime,
    closed_years,
    communities,
    demands,
    events,
    expenses,
    ledger_entries,
    projects,
)
from engine.store.uow import Zizhi
from engine.store.verify import verify_ledger
from engine.store.verify_read import AT, ID, event_rows, iso_text
from tests.conftest import DatabaseFactory
from tests.factories import World


@pytest.fixture
def history(fresh_z: Zizhi) -> Iterator[tuple[Zizhi, list[str]]]:
    yield fresh_z, _build(fresh_z)


def _build(z: Zizhi) -> list[str]:
    """Three communities with projects through their steps, expenses, demands, a closed year."""
    world = World(z)
    made = [world.community() for _ in range(3)]
    year = fiscal_year(z.clock())
    for community in made:
        engine.set_allocation(z, CLI, community, "self_governance", year, 6_000_000)
        project = world.advance(world.project(community), "implementation", budget_fen=500_000)
        engine.record_expense(
            z,
            world.committee(community),
            project.id,
            {"amount_fen": 1000, "payee": "某公司", "invoice_no": "A1", "description": "材料"},
        )
        engine.record_demand(z, None, community, {"content": "加装扶手", "resident": "张先生"})
        world.advance(world.project(community), "planning")
    engine.close_year(z, CLI, 2025)
    return made


def test_every_time_read_as_text_in_sql_is_its_iso_form(history: tuple[Zizhi, list[str]]) -> None:
    z, _ = history
    dialect = z.db.engine.dialect.name
    with z.read() as conn:
        for table in (events, ledger_entries, projects, demands, expenses, communities):
            for column in table.columns:
                if not isinstance(column.type, UTCDateTime):
                    continue
                pairs = conn.execute(sa.select(column, iso_text(column, dialect))).all()
                assert pairs, table.name
                for moment, text in pairs:
                    assert text == (None if moment is None else iso(moment)), column


def test_a_sqlite_time_stored_in_another_shape_is_read_as_the_column_reads_it(
    databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    # SQLite alone: it stores times as text, which a hand can write in another shape;
    # PostgreSQL stores timestamptz, which has one.
    z = Zizhi(databases.new("sqlite"), registry)
    _build(z)
    first = sa.select(sa.func.min(events.c.id)).scalar_subquery()
    with z.db.write() as conn:
        conn.execute(sa.text("DROP TRIGGER events_no_update"))
        # Seconds only, and a 'T': what a hand could write; SQLAlchemy still reads it.
        conn.execute(
            sa.update(events)
            .where(events.c.id == first)
            .values(at=sa.func.strftime("%Y-%m-%dT%H:%M:%S", sa.type_coerce(events.c.at, sa.Text)))
        )
        stored = conn.execute(sa.select(events.c.id, events.c.at).where(events.c.id == first)).one()
        read = {row[ID]: row[AT] for row in event_rows(conn)}
        assert read[stored.id] == iso(stored.at)
        assert read[stored.id].endswith(".000000+00:00")
        _, fault = verify_all(conn)
        assert fault is not None and "哈希" in fault.reason  # the microseconds were hashed


def test_checking_on_two_processes_passes_a_sound_history_and_counts_every_event(
    history: tuple[Zizhi, list[str]],
) -> None:
    z, _ = history
    one = engine.verify(z, CLI, parallel_from=10**12)
    two = engine.verify(z, CLI, parallel_from=0)
    assert one.ok and two.ok, (one, two)
    assert two.checked == one.checked
    with z.read() as conn:
        assert one.checked == conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()


@pytest.mark.parametrize(
    "edit",
    [
        sa.update(expenses).values(amount_fen=99_999),
        sa.update(projects).values(title="改过的标题"),
        sa.update(demands).values(content="改过"),
        sa.update(communities).values(name="改过"),
        sa.delete(closed_years),
        sa.update(ledger_entries).values(amount_fen=1),
    ],
    ids=["expenses", "projects", "demands", "communities", "closed_years", "ledger_entries"],
)
def test_checking_on_two_processes_names_the_fault_one_process_names(
    history: tuple[Zizhi, list[str]], edit: sa.Executable
) -> None:
    z, _ = history
    with z.db.write() as conn:
        if edit.table is ledger_entries:  # type: ignore[attr-defined]
            if z.db.is_sqlite:
                conn.execute(sa.text("DROP TRIGGER ledger_entries_no_update"))
            else:
                conn.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
        conn.execute(edit)
        conn.commit()
    one = engine.verify(z, CLI, parallel_from=10**12)
    two = engine.verify(z, CLI, parallel_from=0)
    assert not one.ok and one.first_bad is not None
    assert two == one


def test_the_ledger_and_the_facts_checked_alone_name_what_the_whole_check_names(
    history: tuple[Zizhi, list[str]],
) -> None:
    z, made = history
    with z.db.write() as conn:
        assert verify_ledger(conn) is None and verify_facts(conn) is None
        theirs = expenses.c.community_id == made[1]
        conn.execute(sa.update(expenses).where(theirs).values(payee="x"))
        _, fault = verify_all(conn)
        assert fault is not None and fault.chain == made[1]
        assert verify_facts(conn) == fault
        assert verify_facts(conn, {made[0], made[2]}) is None


def test_checking_on_two_processes_while_changes_commit_passes_and_lets_them_commit(
    history: tuple[Zizhi, list[str]],
) -> None:
    """The snapshot both processes share is taken while changes keep committing; the write
    lock SQLite's handshake holds for a moment only delays them."""
    z, made = history
    world = World(z)
    stop = threading.Event()
    written: list[int] = []
    failed: list[BaseException] = []

    def keep_writing() -> None:
        try:
            while not stop.is_set():
                written.append(world.project(made[0]).id)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        reports = [engine.verify(z, CLI, parallel_from=0) for _ in range(2)]
    finally:
        stop.set()
        writer.join()
    assert not failed, failed
    assert all(r.ok for r in reports), reports
    assert written
    assert engine.verify(z, CLI, parallel_from=0).ok


def test_verification_runs_with_the_cyclic_collector_paused_and_restores_it(
    history: tuple[Zizhi, list[str]],
) -> None:
    z, _ = history
    seen: list[bool] = []
    gc.enable()
    report = engine.verify(z, CLI, lambda _: seen.append(gc.isenabled()), parallel_from=10**12)
    assert report.ok and seen and not any(seen)
    assert gc.isenabled()


# A process of its own: the helper is forked only from a process with one thread.
_WITH_A_FORKED_HELPER = textwrap.dedent(
    """
    import json, sys, threading
    import engine, workflows
    from engine.model import CLI
    from engine.store.verify_parallel import Helper
    parallel_from = int(sys.argv[2])
    with engine.verify_helper() as helper:
        assert isinstance(helper, Helper), helper
        process = helper._process
        assert process.is_alive() and process.pid is not None
        z = engine.Zizhi(engine.Database(sys.argv[1]), workflows.load_registry())
        report = engine.verify(z, CLI, parallel_from=parallel_from, helper=helper)
    process.join(0)
    threads = threading.active_count()
    print(json.dumps([report.ok, report.checked, report.first_bad, process.exitcode, threads]))
    """
)


def _verify_with_a_forked_helper(z: Zizhi, parallel_from: int) -> list[Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITH_A_FORKED_HELPER,
            z.db.url.render_as_string(False),
            str(parallel_from),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("tampered", [False, True], ids=["sound", "tampered"])
def test_a_helper_forked_before_the_database_is_opened_checks_half_of_it(
    history: tuple[Zizhi, list[str]], tampered: bool
) -> None:
    """``zizhi verify`` forks its second process first; it reports what one process does."""
    z, made = history
    if tampered:
        with z.db.write() as conn:
            conn.execute(
                sa.update(demands).where(demands.c.community_id == made[2]).values(content="改过")
            )
            conn.commit()
    one = engine.verify(z, CLI, parallel_from=10**12)
    ok, checked, first_bad, exitcode, threads = _verify_with_a_forked_helper(z, 0)
    assert (ok, checked, first_bad) == (one.ok, one.checked, one.first_bad)
    assert ok is not tampered
    assert (exitcode, threads) == (0, 1)  # it ended, and nothing was left running


def test_a_forked_helper_not_needed_goes_away(history: tuple[Zizhi, list[str]]) -> None:
    z, _ = history
    ok, checked, first_bad, exitcode, threads = _verify_with_a_forked_helper(z, 10**12)
    assert (ok, first_bad, exitcode, threads) == (True, None, 0, 1)
    assert checked == engine.verify(z, CLI, parallel_from=10**12).checked


@pytest.mark.parametrize("on", ["another community's chain", "the system chain"])
def test_a_ledger_event_on_another_chain_is_checked_by_either_way_of_checking(
    history: tuple[Zizhi, list[str]], on: str
) -> None:
    """The engine records a community's ledger events on its own chain. One appended, well
    chained, to another community's chain, for an entry the ledger does not hold, is the
    fault one process names; each half of a two-process check reads only its own
    communities' entries, and must not let it pass between them."""
    z, made = history
    with z.db.write() as conn:
        recorded = conn.execute(
            sa.select(events.c.data)
            .where(events.c.type == "ledger.reserved", events.c.community_id == made[0])
            .limit(1)
        ).scalar_one()
        data = {**json.loads(recorded), "entry_id": 10**9}
        elsewhere = made[1] if on == "another community's chain" else SYSTEM_CHAIN
        chain = ChainWriter(conn, elsewhere, CLI.actor, z.clock())
        chain.append("ledger.reserved", data, community_id=made[0])
        chain.flush()
        conn.commit()
    one = engine.verify(z, CLI, parallel_from=10**12)
    assert not one.ok and one.first_bad is not None
    assert f"分录 {10**9} 在账本中缺失" in one.first_bad["reason"]
    assert engine.verify(z, CLI, parallel_from=0) == one
    auditor = Principal(
        id="token:a", name="审计", role=Role.auditor, communities=frozenset(made[:1])
    )
    scoped = engine.verify(z, auditor, parallel_from=10**12)
    assert not scoped.ok and scoped.first_bad == one.first_bad


def test_the_command_line_starts_no_thread_so_its_verify_can_fork_the_helper() -> None:
    """``zizhi verify`` forks only from a process with one thread: what the CLI imports
    (and the settings it reads) must not start one, or the command would spawn and wait."""
    script = (
        "import api.cli, engine, json, threading\n"
        "settings = api.cli.Settings()\n"
        "threads = threading.active_count()\n"
        "with engine.verify_helper() as helper:\n"
        "    forked = helper is not None\n"
        "print(json.dumps([threads, forked]))\n"
    )
    assert _in_fresh_process(script) == [1, True]


def test_the_command_line_imports_no_http_client_until_a_command_sends() -> None:
    """Every command reads the settings, and ``zizhi verify`` waits for the imports before it
    starts; the webhook dispatcher's HTTP client (a tenth of a second) is for ``serve`` and
    ``worker`` alone."""
    script = (
        "import api.cli, json, sys\n"
        "settings = api.cli.Settings()\n"
        "config = settings.dispatch_config()\n"
        "clients = ('httpx', 'httpx2', 'api.dispatcher')\n"
        "print(json.dumps(sorted(m for m in clients if m in sys.modules)))\n"
    )
    assert _in_fresh_process(script) == []


def _in_fresh_process(script: str) -> Any:
    """What ``script`` prints as JSON, run by a new interpreter from the repository root."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
