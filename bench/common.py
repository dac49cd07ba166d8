"""What every benchmark shares: throwaway databases, data prepared through the engine, timing.

Data is always prepared through the engine (as the tests do), so every history chain in a
benchmark database stays valid and can be verified afterwards. Preparation runs on a second
``Database`` over the same file or server with durability off: it is not what is measured,
and fsyncing tens of thousands of set-up commits would only make a run slower.
"""

from __future__ import annotations

import gc
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

import engine
import workflows
from engine import CLI, Database, Principal, Role, Zizhi
from engine.model import Fund, fiscal_year, utc_now
from engine.store.tables import fund_accounts, ledger_entries
from engine.store.verify import verify_chains

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
VOTE = {"council_size": 9, "attendees": 7, "votes_for": 6, "votes_against": 1, "abstentions": 0}
BIG_ALLOCATION_FEN = 1_000_000_000  # the largest allocation the engine accepts


# --- throwaway databases -------------------------------------------------------------------------


def clean_up_when_terminated() -> None:
    """Turn SIGTERM into SystemExit, so a killed run still drops its database and files."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A SQLite file in a fresh temporary directory (on the same disk as /tmp)."""
    with tempfile.TemporaryDirectory(prefix="zizhi-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextmanager
def pg_url(admin_url: str = PG_ADMIN_URL, template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of ``template``, if named), dropped afterwards
    even if the benchmark fails."""
    name = f"zizhi_bench_{uuid.uuid4().hex[:12]}"
    copying = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copying}')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def copy_of(url: str, admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A copy of the database at ``url`` as it stands, removed afterwards.

    SQLite: the online backup API, page by page, into a file beside it. PostgreSQL: ``CREATE
    DATABASE … TEMPLATE``, which needs every other session to the source closed first
    (dispose the sites on it).
    """
    if backend_of(url) == "sqlite":
        source = Path(url.removeprefix("sqlite:///"))
        target = source.with_name(f"{source.stem}-{uuid.uuid4().hex[:8]}.db")
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        try:
            yield f"sqlite:///{target}"
        finally:
            for path in source.parent.glob(f"{target.name}*"):
                path.unlink(missing_ok=True)
        return
    with pg_url(admin_url, template=url.rsplit("/", 1)[1]) as copy:
        yield copy


def describe_environment(*, postgresql: bool, admin_url: str = PG_ADMIN_URL) -> str:
    """One line for a result's header: the machine, its load, the versions, the engine's commit.

    Figures only compare with figures taken at the same load and commit.
    """
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        f"{os.cpu_count()} CPUs (load {load})",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if postgresql:
        with psycopg.connect(admin_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            # What write costs at scale depend on (docs/deployment.md): read, not assumed.
            settings = [
                f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"
                for name in ("shared_buffers", "synchronous_commit", "max_wal_size")
            ]
        parts.append(
            f"PostgreSQL {version[0].split()[0] if version else '?'} ({' '.join(settings)})"
        )
    parts.append(f"commit {_commit()}")
    return ", ".join(parts)


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "engine", "workflows"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted engine changes" if dirty.strip() else "")


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# --- a site: one database, the engine over it, and a committee acting in it ---------------------


@dataclass
class Site:
    url: str
    z: Zizhi  # the engine being measured, at full durability
    prep: Zizhi  # the same database with durability off, for preparing data
    year: int
    committee: Principal
    communities: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return backend_of(self.url)

    def close(self) -> None:
        self.z.db.dispose()
        self.prep.db.dispose()


def open_site(
    url: str,
    *,
    communities: Sequence[str] = ("c1",),
    sqlite_synchronous: str = "FULL",
    pool_size: int = 10,
    existing: bool = False,
) -> Site:
    """A site on ``url`` with ``communities`` created (``existing``: already there, as in a
    copy of a site's database)."""
    registry = workflows.load_registry()
    if backend_of(url) == "sqlite":
        db = Database(url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size)
        prep_db = Database(url, sqlite_synchronous="OFF")
    else:
        db = Database(url, pool_size=pool_size)
        prep_db = Database(url)
        sa.event.listen(prep_db.engine, "connect", _no_synchronous_commit)
    prep_db.migrate()
    committee = Principal(
        id="token:bench", name="bench", role=Role.committee, communities=frozenset(communities)
    )
    site = Site(
        url=url,
        z=Zizhi(db, registry),
        prep=Zizhi(prep_db, registry),
        year=fiscal_year(utc_now()),
        committee=committee,
    )
    if existing:
        site.communities.extend(communities)
        return site
    for community in communities:
        engine.create_community(
            site.prep,
            CLI,
            id=community,
            name=f"基准社区{community}",
            street="金阊街道",
            district="姑苏区",
            kind="urban",
        )
        # The default ¥50,000 a year would run out after a few thousand approvals.
        engine.set_allocation(
            site.prep, CLI, community, Fund.self_governance.value, site.year, BIG_ALLOCATION_FEN
        )
        site.communities.append(community)
    return site


def _no_synchronous_commit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("SET synchronous_commit = off")
    dbapi_conn.commit()


# --- preparing projects in the state a benchmark starts from -------------------------------------


def open_projects(site: Site, community: str, count: int) -> list[int]:
    return [
        engine.open_project(
            site.prep,
            site.committee,
            community_id=community,
            workflow="self_governance",
            title="基准项目",
            category="居民自治类",
        ).id
        for _ in range(count)
    ]


def projects_in_review(site: Site, community: str, count: int, *, budget_fen: int) -> list[int]:
    """Projects with a plan submitted: the next action, ``approve``, reserves ``budget_fen``."""
    ids = open_projects(site, community, count)
    for project_id in ids:
        engine.add_to_project(
            site.prep, site.committee, project_id, {"content": "楼道照明", "resident": "张三"}
        )
        engine.fire(site.prep, site.committee, project_id, "close_collection", {})
        engine.fire(site.prep, site.committee, project_id, "accept", {"note": "同意"})
        engine.fire(
            site.prep,
            site.committee,
            project_id,
            "submit_plan",
            {"budget_fen": budget_fen, "plan": "更换灯具"},
        )
    return ids


def project_in_implementation(site: Site, community: str, *, budget_fen: int) -> int:
    """One project with ``budget_fen`` reserved, where expenses may be recorded."""
    (project_id,) = projects_in_review(site, community, 1, budget_fen=budget_fen)
    engine.fire(site.prep, site.committee, project_id, "approve", VOTE)
    return project_id


# --- checking that what was written is sound ------------------------------------------------------


def check_database(site: Site) -> str:
    """Verify every history chain and every fund account; raise if anything is off."""
    with site.z.read() as conn:
        checked, fault = verify_chains(conn)
        if fault is not None:
            raise AssertionError(f"history chain broken: {fault.as_dict()}")
        accounts = conn.execute(sa.select(fund_accounts)).all()
        entries = conn.execute(sa.select(ledger_entries).order_by(ledger_entries.c.id)).all()
    by_account: dict[tuple[str, str, int], list[Any]] = defaultdict(list)
    for entry in entries:
        by_account[entry.community_id, entry.fund, entry.year].append(entry)
    for account in accounts:
        mine = by_account[account.community_id, account.fund, account.year]
        allocated = sum(e.amount_fen for e in mine if e.kind == "allocate")
        spent = sum(e.amount_fen for e in mine if e.kind == "spend")
        reserved = (
            sum(e.amount_fen for e in mine if e.kind == "reserve")
            - spent
            - sum(e.amount_fen for e in mine if e.kind == "release")
        )
        last = mine[-1]
        expected = (account.allocated_fen, account.reserved_fen, account.spent_fen)
        if (allocated, reserved, spent) != expected or (
            last.allocated_fen,
            last.reserved_fen,
            last.spent_fen,
        ) != expected:
            raise AssertionError(f"ledger of {account.community_id} does not add up")
    return f"{checked} events verified, {len(accounts)} fund accounts add up"


# --- timing -----------------------------------------------------------------------------------


def time_batch(transaction: Callable[[Any], object], items: Sequence[Any]) -> float:
    """Seconds for one transaction per item, run back to back."""
    start = time.perf_counter()
    for item in items:
        transaction(item)
    return time.perf_counter() - start


@dataclass
class Comparison:
    path: str
    engine_us: list[float]
    raw_us: list[float]

    @property
    def engine(self) -> float:
        return statistics.median(self.engine_us)

    @property
    def raw(self) -> float:
        return statistics.median(self.raw_us)

    @property
    def ratio(self) -> float:
        return self.engine / self.raw


def compare(
    path: str,
    engine: Callable[[Any], object],
    raw: Callable[[Any], object],
    engine_items: Sequence[Any],
    raw_items: Sequence[Any],
    *,
    runs: int,
    n: int,
    warmup: int,
    chunk: int = 100,
) -> Comparison:
    """Warm both sides up, then time ``runs`` runs of ``n`` transactions a side, taking
    turns (``take_turns``)."""
    spent = take_turns(
        {"engine": (engine, engine_items), "raw": (raw, raw_items)},
        runs=runs,
        n=n,
        warmup=warmup,
        chunk=chunk,
    )
    return Comparison(path, spent["engine"], spent["raw"])


def take_turns(
    sides: Mapping[str, tuple[Callable[[Any], object], Sequence[Any]]],
    *,
    runs: int,
    n: int,
    warmup: int,
    chunk: int = 100,
) -> dict[str, list[float]]:
    """Warm every side up, then time ``runs`` runs of ``n`` transactions a side: µs per
    transaction of each side, one figure per run.

    Within a run the sides take turns every ``chunk`` transactions, in reversed order every
    other turn: whatever else the machine is doing (other processes, a WAL checkpoint, the
    page cache) then lands on every side alike, not on whichever ran during it.
    """
    needed = warmup + runs * n
    assert all(len(items) >= needed for _, items in sides.values()), "prepare more items"
    for transaction, items in sides.values():
        time_batch(transaction, items[:warmup])
    result: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides.items())
    for run in range(runs):
        gc.collect()
        spent = dict.fromkeys(sides, 0.0)
        for turn, start in enumerate(range(warmup + run * n, warmup + (run + 1) * n, chunk)):
            batch = slice(start, min(start + chunk, warmup + (run + 1) * n))
            for name, (transaction, items) in order if turn % 2 == 0 else reversed(order):
                spent[name] += time_batch(transaction, items[batch])
        for name in sides:
            result[name].append(spent[name] / n * 1e6)
    return result


def print_comparisons(results: Sequence[Comparison]) -> None:
    header = (
        f"{'path':<22} {'engine µs/tx':>20} {'raw µs/tx':>20} {'engine tx/s':>12} "
        f"{'raw tx/s':>10} {'engine/raw':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.path:<22} {_spread(r.engine_us):>20} {_spread(r.raw_us):>20} "
            f"{1e6 / r.engine:>12,.0f} {1e6 / r.raw:>10,.0f} {r.ratio:>10.2f}x"
        )
    print("µs/tx: median of the runs (fastest–slowest run in brackets)")


def _spread(times: Sequence[float]) -> str:
    return f"{statistics.median(times):,.0f} ({min(times):,.0f}–{max(times):,.0f})"
