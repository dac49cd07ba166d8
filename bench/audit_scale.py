"""What an auditor does, on a history of a million events (issue 11 item 5).

    .venv/bin/python bench/audit_scale.py [--events 1000000] [--db sqlite|postgresql|all]
        [--runs 200] [--processes 2] [--keep DIR | --url URL] [--verify]

The history is built through the engine's write path by ``bench.history_builder``: projects
through their lifecycles, with demands, expenses and ledger moves, in ``COMMUNITIES``
communities, the clock simulated from January to now. With ``--keep DIR`` the database is
kept (SQLite: ``DIR/audit-<events>.db``; PostgreSQL: database ``zizhi_audit_<events>``) and
a later run with the same ``--keep`` and ``--events`` measures it again without building
(the engine's migrations are applied first, so a new index is measured too); ``--url``
measures any database built before as it is.

Timed through the engine's surface, as an unrestricted auditor (each query then also writes
its access-log record, at full durability, as the API does), ``--runs`` samples each, p50
and p95:

* a project's history (``GET /api/v1/projects/{id}/history``), random projects;
* a filtered page of 100 events from a cursor at a random place in the history, filtered
  by community, by type, by a common and a rare type prefix, by actor, by project, and
  unfiltered; the first page ``since=`` a random moment; pages from a cursor ``until=`` a
  random moment and in the week after one;
* the CSV export of everything (``GET /api/v1/audit/events.csv``'s generator) in a child
  process: events/s and the child's peak RSS;
* first, the checkpoint that builds the Merkle tree from nothing (once; then it only
  grows; before it, a few ``since=`` pages without the tree's time blocks); then a
  checkpoint with nothing new, a checkpoint after one new event, inclusion proofs of random
  events and consistency proofs from a random size to the current one;
* ``verify`` only with ``--verify`` (``bench/verify_speed.py`` times it properly).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
import workflows  # noqa: E402
from bench.common import (  # noqa: E402
    PG_ADMIN_URL,
    clean_up_when_terminated,
    describe_environment,
    open_site,
    pg_url,
    sqlite_url,
)
from bench.history_builder import build_history  # noqa: E402
from engine import CLI, Database, Principal, Role, Zizhi  # noqa: E402
from engine.store import feed, merkle  # noqa: E402
from engine.store.tables import events, projects  # noqa: E402

COMMUNITIES = [f"c{i:02d}" for i in range(1, 25)]
AUDITOR = Principal(id="token:bench-auditor", name="审计", role=Role.auditor)

EXPORT = """
import resource, sys, time
sys.path.insert(0, {root!r})
import engine, workflows
from api.routes.audit import _csv
from engine import Database, Principal, Role, Zizhi
z = Zizhi(Database({url!r}), workflows.load_registry())
auditor = Principal(id="token:bench-auditor", name="审计", role=Role.auditor)
start = time.perf_counter()
size = count = 0
rows = engine.stream_events(z, auditor, engine.EventFilter())
for chunk in _csv(rows):
    size += len(chunk)
spent = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(size, spent, rss)
"""


def timed(
    fn: Callable[[int], object], runs: int, setup: Callable[[int], object] | None = None
) -> str:
    """p50 and p95 of ``runs`` calls of ``fn(i)`` in ms (each after ``setup(i)``, not timed),
    and the median CPU time this process spent per call (less moved by other processes' load
    than the wall clock)."""
    return timed_in_turns([fn], runs, setup)[0]


def timed_in_turns(
    fns: list[Callable[[int], object]],
    runs: int,
    setup: Callable[[int], object] | None = None,
) -> list[str]:
    """``timed`` for several calls taking turns sample by sample: what the machine, the
    page cache or the server's buffers do meanwhile falls on each alike."""
    times: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for i in range(runs):
        for k, fn in enumerate(fns):
            if setup is not None:
                setup(i)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(i)
            times[k].append((time.perf_counter() - start) * 1000)
            cpu[k].append((time.process_time() - start_cpu) * 1000)
    out = []
    for wall, own in zip(times, cpu, strict=True):
        wall.sort()
        p95 = wall[min(len(wall) - 1, int(len(wall) * 0.95))]
        out.append(
            f"p50 {statistics.median(wall):.1f} ms, p95 {p95:.1f} ms "
            f"(CPU p50 {statistics.median(own):.1f} ms)"
        )
    return out


@contextmanager
def database(kind: str, keep: Path | None, size: int) -> Iterator[tuple[str, bool]]:
    """(url, whether it still needs building)."""
    if keep is None:
        with sqlite_url() if kind == "sqlite" else pg_url() as url:
            yield url, True
        return
    if kind == "sqlite":
        keep.mkdir(parents=True, exist_ok=True)
        path = keep / f"audit-{size}.db"
        yield f"sqlite:///{path}", not path.exists()
        return
    name = f"zizhi_audit_{size}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, found is None


def run(url: str, fresh: bool, args: argparse.Namespace) -> None:
    if fresh:
        open_site(url, communities=COMMUNITIES).close()
        report = build_history(
            url,
            args.events,
            COMMUNITIES,
            processes=args.processes,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
        print(
            f"  built {report.built:,} events ({report.projects:,} projects) in "
            f"{report.seconds:,.0f} s: {report.rate:,.0f} events/s"
        )
    db = Database(url)
    db.migrate()
    if not url.startswith("sqlite"):
        # Statistics, as autovacuum keeps them on a production server (this test server runs
        # with autovacuum off): without them the planner sorts a prefix filter's matches.
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    z = Zizhi(db, workflows.load_registry())
    try:
        measure(z, url, args)
    finally:
        db.dispose()


def measure(z: Zizhi, url: str, args: argparse.Namespace) -> None:
    runs, rng = args.runs, random.Random(5)
    with z.read() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())
        ids = list(conn.execute(sa.select(projects.c.id)).scalars())
        first_at, last_at = conn.execute(
            sa.select(sa.func.min(events.c.at), sa.func.max(events.c.at))
        ).one()
        max_id = int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar_one())
    print(f"  {total:,} events, {len(ids):,} projects, {first_at:%Y-%m-%d} to {last_at:%Y-%m-%d}")
    moments = [first_at + (last_at - first_at) * rng.random() for _ in range(runs)]

    def since(i: int) -> None:
        engine.query_events(z, AUDITOR, engine.EventFilter(since=moments[i]), limit=100)

    with z.read() as conn:
        tree = merkle.size(conn)
    if tree == 0:  # what since= costs without the tree's blocks (a few samples: it is slow)
        print(f"  first page of 100 since a random moment, no tree yet: {timed(since, 5)}")
    # A server keeps the tree current (the daily checkpoint): every read below has it.
    start = time.perf_counter()
    view = engine.checkpoint(z)
    print(
        f"  first checkpoint (tree of {view.tree_size:,}, {view.tree_size - tree:,} new): "
        f"{time.perf_counter() - start:,.1f} s"
    )

    picked = [rng.choice(ids) for _ in range(runs)]
    others = [rng.choice(ids) for _ in range(runs)]
    sizes: list[int] = []

    def history(i: int) -> None:
        sizes.append(len(engine.project_history(z, AUDITOR, picked[i])))

    # In turns with the same reads (of other projects) by an admin, whose reads write no
    # access-log record: what the record's own commit costs is the difference.
    logged, unlogged = timed_in_turns(
        [history, lambda i: engine.project_history(z, CLI, others[i])], runs
    )
    print(f"  a project's history: {logged} ({statistics.mean(sizes):.0f} events on average)")
    print(f"  a project's history, read alone (no access-log record): {unlogged}")

    cursors = _cursors(z, rng, max_id, runs)
    filters: dict[str, Callable[[], engine.EventFilter]] = {
        "one community": lambda: engine.EventFilter(community_id=rng.choice(COMMUNITIES)),
        "type expense.recorded": lambda: engine.EventFilter(type="expense.recorded"),
        "type prefix ledger.*": lambda: engine.EventFilter(type="ledger.*"),
        # A prefix few events match: a page finds little and must look to the feed's end.
        "type prefix community.* (rare)": lambda: engine.EventFilter(type="community.*"),
        "one committee (actor)": lambda: engine.EventFilter(
            actor=f"token:committee-{rng.choice(COMMUNITIES)}"
        ),
        "one project": lambda: engine.EventFilter(project_id=rng.choice(ids)),
        "no filter": lambda: engine.EventFilter(),
    }
    for name, make in filters.items():
        wheres = [make() for _ in range(runs)]

        def page(i: int, wheres: list[engine.EventFilter] = wheres) -> None:
            engine.query_events(z, AUDITOR, wheres[i], limit=100, cursor=cursors[i])

        if name != "one community":
            print(f"  page of 100, {name}, from a cursor: {timed(page, runs)}")
            continue

        def alone_page(i: int, wheres: list[engine.EventFilter] = wheres) -> None:
            engine.query_events(z, CLI, wheres[-1 - i], limit=100, cursor=cursors[-1 - i])

        logged, alone = timed_in_turns([page, alone_page], runs)
        print(f"  page of 100, {name}, from a cursor: {logged}")
        print(f"  page of 100, {name}, read alone (no access-log record): {alone}")
    print(f"  first page of 100 since a random moment: {timed(since, runs)}")

    def until(i: int) -> None:
        where = engine.EventFilter(until=moments[i])
        engine.query_events(z, AUDITOR, where, limit=100, cursor=cursors[i])

    print(f"  page of 100 until a random moment, from a cursor: {timed(until, runs)}")

    def week(i: int) -> None:
        where = engine.EventFilter(since=moments[i], until=moments[i] + timedelta(days=7))
        engine.query_events(z, AUDITOR, where, limit=100, cursor=cursors[-1 - i])

    print(f"  page of 100 in a week from a random moment, from a cursor: {timed(week, runs)}")

    def since_community(i: int) -> None:
        where = engine.EventFilter(community_id=COMMUNITIES[i % len(COMMUNITIES)], since=moments[i])
        engine.query_events(z, AUDITOR, where, limit=100)

    print(
        f"  first page of 100, one community since a random moment: {timed(since_community, runs)}"
    )

    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", EXPORT.format(root=root, url=url)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    size, spent, rss = int(out[0]), float(out[1]), float(out[2])
    print(
        f"  CSV export of everything ({size / 2**20:,.0f} MiB) in a child: {spent:,.1f} s, "
        f"{total / spent:,.0f} events/s, peak RSS {rss:,.0f} MB"
    )

    print(f"  checkpoint, nothing new: {timed(lambda _: engine.checkpoint(z), runs)}")
    demands = [rng.choice(COMMUNITIES) for _ in range(runs)]

    def one_more(i: int) -> None:
        engine.record_demand(z, None, demands[i], {"content": "新需求", "resident": "李四"})

    after_one = timed(lambda _: engine.checkpoint(z), runs, setup=one_more)
    print(f"  checkpoint after one new event: {after_one}")
    size_now = engine.checkpoint(z).tree_size
    events_picked = [key[1] for key in _events_at(z, rng, max_id, runs)]
    print(
        f"  inclusion proof: "
        f"{timed(lambda i: engine.inclusion_proof(z, AUDITOR, events_picked[i]), runs)}"
    )
    firsts = [rng.randint(1, size_now) for _ in range(runs)]
    print(
        f"  consistency proof: "
        f"{timed(lambda i: engine.consistency_proof(z, AUDITOR, firsts[i], size_now), runs)}"
    )
    if args.verify:
        start = time.perf_counter()
        report = engine.verify(z, AUDITOR)
        spent = time.perf_counter() - start
        print(f"  verify: ok={report.ok}, {report.checked / spent:,.0f} events/s")


def _cursors(z: Zizhi, rng: random.Random, max_id: int, runs: int) -> list[str]:
    """Cursors at random events of the first 90 % of the history (so pages are full)."""
    return [feed.encode_cursor(k) for k in _events_at(z, rng, int(max_id * 0.9), runs)]


def _events_at(z: Zizhi, rng: random.Random, top: int, n: int) -> list[tuple[int, int]]:
    """The (xid, id) of ``n`` events picked at random among the first ids up to ``top``."""
    keys = []
    with z.read() as conn:
        for _ in range(n):
            row = conn.execute(
                sa.select(events.c.xid, events.c.id)
                .where(events.c.id >= rng.randint(1, top))
                .order_by(events.c.id)
                .limit(1)
            ).one()
            keys.append((int(row.xid), int(row.id)))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--processes", type=int, default=2, help="builders on PostgreSQL")
    parser.add_argument("--keep", type=Path, help="keep the database here, reuse it if built")
    parser.add_argument("--url", help="measure this database as it is (built before)")
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()
    clean_up_when_terminated()
    print(describe_environment(postgresql=args.db != "sqlite"))
    if args.url:
        run(args.url, False, args)
        return
    for kind in ("sqlite", "postgresql"):
        if args.db in (kind, "all"):
            print("SQLite" if kind == "sqlite" else "PostgreSQL")
            with database(kind, args.keep, args.events) as (url, fresh):
                run(url, fresh, args)
            print(f"  load after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
