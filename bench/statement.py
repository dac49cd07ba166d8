"""The cost of one statement through SQLAlchemy Core, against the same SQL on the bare driver.

    .venv/bin/python bench/statement.py [--n 3000] [--db sqlite|postgresql|all]

An engine transition is a handful of statements and a commit; what it costs beyond the
hand-written baseline is mostly per statement. This times, inside one open write transaction
(rolled back at the end, so no commit and no fsync is measured), four statements transitions
issue, each three ways on the same connection:

* ``core``: the engine's own prebuilt Core statement, ``conn.execute(stmt, params)`` and
  ``.first()`` / ``.scalar_one()`` as the engine calls it;
* ``driver_sql``: ``conn.exec_driver_sql(text, tuple)`` — SQLAlchemy's connection and result,
  but no compilation cache lookup or bind/result type processing;
* ``dbapi``: ``cursor.execute(text, tuple).fetchone()`` on the DB-API connection underneath.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import count
from typing import Any

from common import (
    Site,
    clean_up_when_terminated,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    sqlite_url,
)
from raw import SQL, SQL_PG

from engine.store.history import _INSERT_EVENT, _MOVE_HEAD
from engine.store.ledger import _EXISTS
from engine.store.uow import LOCK_PROJECT as _LOCK


def bench_database(url: str, n: int, repeats: int) -> list[tuple[str, str, float]]:
    site = open_site(url)
    (project_id,) = open_projects(site, "c1", 1)
    rows: list[tuple[str, str, float]] = []
    try:
        with site.z.db.write() as conn:
            cases = _cases(site, conn, project_id)
            label = "sqlite" if site.backend == "sqlite" else "postgresql"
            for statement, ways in cases.items():
                for call in ways.values():
                    for _ in range(200):  # warm the caches and any server-side plans
                        call()
                timings: dict[str, list[float]] = {way: [] for way in ways}
                for _ in range(repeats):  # the ways take turns, so drift hits all alike
                    for way, call in ways.items():
                        start = time.perf_counter()
                        for _ in range(n):
                            call()
                        timings[way].append((time.perf_counter() - start) / n * 1e6)
                rows += [
                    (f"{label} {statement}", way, statistics.median(us))
                    for way, us in timings.items()
                ]
            # leaving without commit rolls back every row the loops wrote
    finally:
        site.close()
    return rows


def _cases(site: Site, conn: Any, project_id: int) -> dict[str, dict[str, Callable[[], Any]]]:
    sqlite = site.backend == "sqlite"
    sql = SQL if sqlite else SQL_PG
    dbapi = conn.connection.driver_connection
    cursor = dbapi.cursor()
    at = datetime.now(UTC)
    at_param = at.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else at
    seqs = count(10**12)  # far past the real chain, so the unique (chain, seq) never clashes

    def event_values() -> dict[str, Any]:
        return {
            "chain": "c1",
            "seq": next(seqs),
            "at": at,
            "actor": "token:bench",
            "role": "committee",
            "community_id": "c1",
            "project_id": project_id,
            "type": "bench.statement",
            "data": "{}",
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
        }

    def event_tuple() -> tuple[Any, ...]:
        values = event_values()
        values["at"] = at_param
        return tuple(values.values())

    account_args = ("c1", "self_governance", site.year)
    account = dict(zip(("a_community", "a_fund", "a_year"), account_args, strict=True))
    # Updating one row thousands of times in one PostgreSQL transaction piles up row
    # versions and slows every later update; a head no row matches measures the statement.
    move = {"head": "nobody", "seq": 1, "hash": "0" * 64}
    move_args = (1, "0" * 64, "nobody")
    return {
        "lock project + community + head": {
            "core": lambda: conn.execute(_LOCK, {"project": project_id}).first(),
            "driver_sql": lambda: conn.exec_driver_sql(sql["lock_project"], (project_id,)).first(),
            "dbapi": lambda: cursor.execute(sql["lock_project"], (project_id,)).fetchone(),
        },
        "fund account exists (tiny read)": {
            "core": lambda: conn.execute(_EXISTS, account).first(),
            "driver_sql": lambda: conn.exec_driver_sql(sql["account_exists"], account_args).first(),
            "dbapi": lambda: cursor.execute(sql["account_exists"], account_args).fetchone(),
        },
        "insert event RETURNING id": {
            "core": lambda: conn.execute(_INSERT_EVENT, event_values()).scalar_one(),
            "driver_sql": lambda: conn.exec_driver_sql(
                sql["insert_event"], event_tuple()
            ).scalar_one(),
            "dbapi": lambda: cursor.execute(sql["insert_event"], event_tuple()).fetchone(),
        },
        "move chain head (no row)": {
            "core": lambda: conn.execute(_MOVE_HEAD, move),
            "driver_sql": lambda: conn.exec_driver_sql(sql["move_head"], move_args),
            "dbapi": lambda: cursor.execute(sql["move_head"], move_args),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="executions per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per way (median)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    args = parser.parse_args(argv)
    clean_up_when_terminated()
    print(f"# {describe_environment(postgresql=args.db != 'sqlite')}")
    rows = []
    if args.db in ("sqlite", "all"):
        with sqlite_url() as url:
            rows += bench_database(url, args.n, args.repeats)
    if args.db in ("postgresql", "all"):
        with pg_url() as url:
            rows += bench_database(url, args.n, args.repeats)
    width = max(len(r[0]) for r in rows)
    print(
        f"{'statement':<{width}} {'core':>8} {'driver_sql':>11} {'dbapi':>8} "
        f"{'core − dbapi':>12}   (µs per statement)"
    )
    by_statement: dict[str, dict[str, float]] = {}
    for statement, way, us in rows:
        by_statement.setdefault(statement, {})[way] = us
    for statement, ways in by_statement.items():
        print(
            f"{statement:<{width}} {ways['core']:>8.1f} {ways['driver_sql']:>11.1f} "
            f"{ways['dbapi']:>8.1f} {ways['core'] - ways['dbapi']:>12.1f}"
        )


if __name__ == "__main__":
    main()
