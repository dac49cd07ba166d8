"""``verify_all`` on two cores: the communities split in two, both halves in ONE snapshot.

A large history is checked by this process and one worker process at once, each taking
about half of the events: the worker checks a set of communities — their chains, their
ledger, their fact tables, exactly as a check scoped to them does — and this process the
other communities, then the system chain, the closed years and the grants. Every row of
every table belongs to one side (a row no side would claim sends the whole check to the
one-process path). A history found sound by both halves is sound; a fault found by either
is named again by the one-process ``verify_all`` in this process's snapshot, so the first
fault reported is always the one that path reports.

Both processes read the same snapshot:

* PostgreSQL: this transaction exports its snapshot (``pg_export_snapshot``); the worker's
  REPEATABLE READ transaction imports it (``SET TRANSACTION SNAPSHOT``) before any read.
* SQLite cannot share a WAL read snapshot between connections. Instead this process takes
  the write lock (``BEGIN IMMEDIATE``) for a moment: while it holds it no change can
  commit, so this transaction and the worker's each start their snapshot on the same last
  commit; then the lock is let go. Writers wait for that moment only (the worker is
  started, connected and waiting before the lock is taken), never for the check itself.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.model import ENTRY_KIND_OF_EVENT
from engine.store.db import Database
from engine.store.facts import MISPLACED, misplaced, verify_all
from engine.store.history import SYSTEM_CHAIN
from engine.store.system_facts import verify_system_facts
from engine.store.tables import (
    chain_heads,
    communities,
    demands,
    events,
    expenses,
    fund_accounts,
    ledger_entries,
    projects,
)
from engine.store.verify import ChainFault, verify_chains
from engine.store.verify_read import ID, raw_rows

# Below this many events a second process costs more (its start) than it saves.
PARALLEL_FROM = 200_000
_WAIT_S = 60.0  # for the worker to start and take its snapshot
PROGRESS = "progress"  # the worker's progress report: (PROGRESS, events checked)


def events_recorded(db: Database) -> int:
    """About how many events the history holds (the chain heads' sum): to decide."""
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.sum(chain_heads.c.seq))).scalar_one() or 0)


class Helper:
    """The second process of a two-process verify: its end of the pipe, and the process.

    ``Helper.fork()`` starts it at once by forking this process, which must then be
    single-threaded and hold no database connection (the command line, before it opens
    the database): the child already has every module imported and is ready the moment
    it is needed, instead of a second or more later. ``Helper.spawn()`` starts a process of
    its own (``python -m engine.store.verify_worker``), which is safe anywhere (a server
    with threads) and imports what it needs first. ``close()`` ends either.
    """

    def __init__(self, link: _Link, process: subprocess.Popen[bytes] | BaseProcess) -> None:
        self.link = link
        self._process = process

    @classmethod
    def fork(cls) -> Helper | None:
        """Fork the helper now, or None where forking is not safe (threads running, or a
        platform that does not fork): ``verify`` then spawns one when it needs it."""
        if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        ours, theirs = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        process = context.Process(target=_forked, args=(ours, theirs), daemon=True)
        process.start()
        theirs.close()
        return cls(_Link(ours), process)

    @classmethod
    def spawn(cls) -> Helper:
        ours, theirs = multiprocessing.Pipe()
        # A process of its own (``python -m``), not multiprocessing's spawn: that would
        # import this process's main module again in the worker (under ``zizhi serve``, the
        # whole web app), and on SQLite this process waits for the worker to be ready.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.store.verify_worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        return cls(_Link(ours), process)

    def close(self) -> None:
        """Let the helper go (unused, it ends on the closed pipe) and wait for it to end."""
        self.link.close()
        process = self._process
        if isinstance(process, subprocess.Popen):
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        else:
            process.join(5)
            if process.exitcode is None:
                process.kill()
                process.join()


def verify_in_two(
    db: Database, progress: Callable[[int], None] | None = None, helper: Helper | None = None
) -> tuple[int, ChainFault | None]:
    """The whole history (no scope), as ``verify_all`` checks it, on two processes: this one
    and ``helper`` (the caller's to close), or one spawned for this check."""
    own = helper is None
    if helper is None:
        helper = Helper.spawn()
    link = helper.link
    try:
        link.send(db.url.render_as_string(hide_password=False))  # never in argv: no password in ps
        if db.is_sqlite:  # the write lock waits for nobody: the worker must be ready first
            link.expect("connected", "the verify worker did not start")
        with _shared_snapshot(db, link) as conn:
            return _verify(conn, link, progress)
    finally:
        if own:
            helper.close()


class _Link:
    """This process's end of the pipe to the worker: what it sends, and what it hears back,
    with the worker's progress reports (``(PROGRESS, n)``) taken aside as they come."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._heard: deque[Any] = deque()
        self.done = 0  # events the worker has checked so far

    def send(self, message: Any) -> None:
        self._conn.send(message)

    def close(self) -> None:
        self._conn.close()

    def catch_up(self) -> None:
        """Take in whatever the worker has said so far (its progress, mostly)."""
        while self._conn.poll():
            self._take(self._conn.recv())

    def recv(self, timeout: float | None = _WAIT_S) -> Any:
        """The worker's next message other than progress (EOFError if it is gone, or has
        said nothing for ``timeout`` seconds; None: as long as it takes)."""
        while not self._heard:
            if not self._conn.poll(timeout):
                raise EOFError("the verify worker said nothing")
            self._take(self._conn.recv())
        return self._heard.popleft()

    def expect(self, greeting: str, failure: str) -> None:
        try:
            if self.recv() == greeting:
                return
        except EOFError:
            pass
        raise RuntimeError(failure)

    def _take(self, message: Any) -> None:
        if type(message) is tuple and len(message) == 2 and message[0] == PROGRESS:
            self.done = message[1]
        else:
            self._heard.append(message)


@contextmanager
def _shared_snapshot(db: Database, to_worker: _Link) -> Iterator[Connection]:
    hold: AbstractContextManager[Connection] | None = db.write() if db.is_sqlite else None
    if hold is not None:
        hold.__enter__()  # no change commits until both snapshots are taken
    try:
        with db.read() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(chain_heads)).scalar_one()
            snapshot = None
            if not db.is_sqlite:
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            to_worker.send(snapshot)
            if hold is not None:
                to_worker.expect("reading", "the verify worker did not take the snapshot")
                hold.__exit__(None, None, None)  # rolled back: it wrote nothing
                hold = None
            # On PostgreSQL nobody waits for the worker: the exported snapshot stays valid
            # while this transaction is open, so the worker, still starting (importing
            # takes a second or two), takes it up whenever it is ready, and this process
            # starts on its own half at once. ``_verify`` reads its greetings at the end.
            yield conn
    finally:
        if hold is not None:
            hold.__exit__(None, None, None)


def _verify(
    conn: Connection, to_worker: _Link, progress: Callable[[int], None] | None
) -> tuple[int, ChainFault | None]:
    halves = _halves(conn)
    if halves is None:  # a row no half would claim: the one-process check names it
        to_worker.send(None)
        return verify_all(conn, None, progress)
    theirs, mine = halves
    to_worker.send(sorted(theirs))

    def report(n: int) -> None:
        if progress is not None:
            to_worker.catch_up()
            progress(n + to_worker.done)

    checked, fault = verify_all(conn, mine, report, part=True)
    if fault is None:
        system, fault = _system_chain(conn)
        checked += system
    if fault is None:
        fault = verify_system_facts(conn)
    if conn.dialect.name != "sqlite":  # its greetings, unread until now
        to_worker.expect("connected", "the verify worker did not start")
        to_worker.expect("reading", "the verify worker did not take the snapshot")
    try:
        outcome = to_worker.recv(None)  # its half may take longer than this one did
    except EOFError:
        raise RuntimeError("the verify worker stopped") from None
    if isinstance(outcome, BaseException):
        raise RuntimeError("the verify worker failed") from outcome
    their_checked, their_fault = outcome
    if fault is not None or their_fault is not None:
        return verify_all(conn, None, progress)
    checked += their_checked
    if progress is not None:
        progress(checked)
    return checked, None


def _system_chain(conn: Connection) -> tuple[int, ChainFault | None]:
    """The system chain's links. A ledger event on it (the engine records none; no community
    is named as the system chain, or ``_halves`` gave up) would be no half's to check: a
    fault here, so that the whole check looks at it."""
    ledger: list[int] = []

    def visit(event: Any) -> None:
        if misplaced(event):
            ledger.append(event[ID])

    checked, fault = verify_chains(conn, chains={SYSTEM_CHAIN}, visit=visit)
    if fault is None and ledger:
        fault = ChainFault(SYSTEM_CHAIN, 0, ledger[0], MISPLACED)
    return checked, fault


def _halves(conn: Connection) -> tuple[set[str], set[str]] | None:
    """The communities in two sets of about equal events, or None if a row would be left
    out (a ledger event of no community, a row claiming the system chain's name)."""
    names: set[str] = set()
    for column in (
        chain_heads.c.chain,
        communities.c.id,
        projects.c.community_id,
        demands.c.community_id,
        expenses.c.community_id,
        ledger_entries.c.community_id,
        fund_accounts.c.community_id,
        events.c.community_id,
        events.c.chain,
    ):
        names.update(v for (v,) in raw_rows(conn, sa.select(column).distinct()))
    if None in names:
        ledger = events.c.type.in_(list(ENTRY_KIND_OF_EVENT))
        orphan = sa.select(events.c.id).where(ledger, events.c.community_id.is_(None)).limit(1)
        if conn.execute(orphan).first() is not None:
            return None
        names.discard(None)
    if SYSTEM_CHAIN in names and _claims_system(conn):
        return None
    names.discard(SYSTEM_CHAIN)
    sizes = dict.fromkeys(names, 0)
    for chain, seq in conn.execute(sa.select(chain_heads.c.chain, chain_heads.c.seq)):
        if chain in sizes:
            sizes[chain] = seq
    theirs: set[str] = set()
    mine: set[str] = set()
    load = [0, 0]
    for name in sorted(names, key=lambda n: (-sizes[n], n)):
        side = 0 if load[0] <= load[1] else 1
        (theirs if side == 0 else mine).add(name)
        load[side] += sizes[name]
    return theirs, mine


def _claims_system(conn: Connection) -> bool:
    """Does any community row or any event name the system chain as its community?"""
    for column in (
        communities.c.id,
        projects.c.community_id,
        demands.c.community_id,
        expenses.c.community_id,
        ledger_entries.c.community_id,
        fund_accounts.c.community_id,
    ):
        if conn.execute(sa.select(column).where(column == SYSTEM_CHAIN).limit(1)).first():
            return True
    stray = sa.select(events.c.id).where(events.c.community_id == SYSTEM_CHAIN)
    return conn.execute(stray.limit(1)).first() is not None


def _forked(ours: Any, theirs: Any) -> None:
    # Nothing inherited is ever collected here: were it a connection of the main process's,
    # its finalizer would close the main process's session.
    gc.freeze()
    ours.close()  # the main process's end: without it here, its closing would go unnoticed
    work(theirs)


def work(to_main: Any) -> None:
    """The worker process (``engine.store.verify_worker``, or forked): connect, take the main
    process's snapshot, check the communities it is given, report progress and the outcome.
    A pipe closed before the database is named: not needed after all."""
    try:
        url = to_main.recv()
    except EOFError:
        return
    try:
        db = Database(url, pool_size=1)
        with db.read() as conn:
            # Connected and inside a transaction that has read nothing yet.
            to_main.send("connected")
            snapshot = to_main.recv()
            if snapshot is not None:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            conn.execute(sa.select(sa.func.count()).select_from(chain_heads)).scalar_one()
            to_main.send("reading")
            scope: Collection[str] | None = to_main.recv()
            if scope is None:
                return
            report = lambda n: to_main.send((PROGRESS, n))  # noqa: E731
            to_main.send(verify_all(conn, scope, report, part=True))
        db.engine.dispose()
    except BaseException as exc:  # noqa: BLE001 - handed to the main process, which raises
        try:
            to_main.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
        except Exception:  # noqa: BLE001 - the main process is gone; nothing to tell
            pass
