"""How fast ``zizhi verify`` checks a history (issue 11 item 5): events/s at 100k and 1M events.

    .venv/bin/python bench/verify_speed.py [--events 100000] [--runs 3]
        [--db sqlite|postgresql|all] [--keep]

The history is built through the engine's own write path (durability off while building):
projects in ``COMMUNITIES`` communities taken through their whole lifecycle — a demand
added, collection closed, accepted, a plan with a budget, approved (a reserve), expenses
(spends), implementation completed, evaluated, closed (a release) — with a pooled demand
now and then, every tenth project cancelled in review (a release) and a yearly allocation
top-up (an allocate), until the events table holds ``--events`` events. ``engine.verify``
(chains, ledger, every fact table; one read transaction) is then timed ``--runs`` times;
the figure is events checked per second (best and median of the runs), with the machine's
load printed beside it, since the machine is shared.

``--keep`` leaves the database in place and prints where it is (a SQLite file in a
temporary directory, or a PostgreSQL database named ``zizhi_bench_…``); ``--reuse URL``
times verify again on such a database without building. Nothing else is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
import workflows  # noqa: E402
from bench.common import (  # noqa: E402
    PG_ADMIN_URL,
    VOTE,
    Site,
    clean_up_when_terminated,
    describe_environment,
    open_site,
)
from engine.model import CLI  # noqa: E402
from engine.store.tables import events  # noqa: E402

COMMUNITIES = [f"c{i}" for i in range(1, 21)]
EXPENSES_PER_PROJECT = 3


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _count(z: engine.Zizhi) -> int:
    with z.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def build(site: Site, target: int) -> int:
    """Whole project lifecycles, round-robin over the communities, until ``target`` events."""
    z, who = site.prep, site.committee
    have = _count(z)
    started, start_count, made = time.monotonic(), have, 0
    invoices = 0
    while have < target:
        for community in site.communities:
            made += 1
            project = engine.open_project(
                z,
                who,
                community_id=community,
                workflow="self_governance",
                title=f"楼道照明改造 {made}",
                category="居民自治类",
            ).id
            engine.add_to_project(
                z, who, project, {"content": "楼道灯坏了，晚上看不见", "resident": "张三"}
            )
            if made % 4 == 0:  # a demand from the pool, linked later or never
                engine.record_demand(
                    z,
                    who,
                    community,
                    {"content": "希望加装扶手", "resident": "李阿姨", "contact": "13800000000"},
                )
            engine.fire(z, who, project, "close_collection", {})
            engine.fire(z, who, project, "accept", {"note": "同意立项"})
            engine.fire(
                z, who, project, "submit_plan", {"budget_fen": 30_000, "plan": "更换 LED 灯具"}
            )
            if made % 10 == 0:  # refused in review: nothing reserved
                engine.fire(z, who, project, "cancel", {"reason": "居民意见不一"})
                continue
            engine.fire(z, who, project, "approve", VOTE)
            for _ in range(EXPENSES_PER_PROJECT):
                invoices += 1
                engine.record_expense(
                    z,
                    who,
                    project,
                    {
                        "amount_fen": 5_000,
                        "payee": "苏州某电器行",
                        "invoice_no": f"F{invoices:09d}",
                        "description": "灯具与安装",
                    },
                )
            engine.fire(z, who, project, "complete_implementation", {"report": "已完成"})
            engine.fire(z, who, project, "evaluate", {"score": 5, "report": "居民满意"})
            engine.fire(
                z,
                who,
                project,
                "close",
                {"notice": "已公示", "satisfied": 40, "unsatisfied": 2},
            )
        have = _count(z)
        rate = (have - start_count) / max(time.monotonic() - started, 1e-9)
        print(f"  {have:,} events ({rate:,.0f}/s while building)", file=sys.stderr)
    return have


def time_verify(z: engine.Zizhi, runs: int) -> list[tuple[float, int, str]]:
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        report = engine.verify(z, CLI)
        spent = time.perf_counter() - start
        if not report.ok:
            raise AssertionError(f"verify failed on a history built by the engine: {report}")
        results.append((spent, report.checked, _load()))
        print(
            f"  verify: {report.checked:,} events in {spent:.2f} s = "
            f"{report.checked / spent:,.0f} events/s (load {_load()})",
            file=sys.stderr,
        )
    return results


def _new_url(kind: str) -> str:
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix="zizhi-bench-")
        return f"sqlite:///{Path(directory) / 'bench.db'}"
    name = f"zizhi_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop(url: str) -> None:
    if url.startswith("sqlite"):
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(kind: str, args: argparse.Namespace) -> None:
    url = args.reuse or _new_url(kind)
    try:
        if args.reuse:
            z = engine.Zizhi(engine.Database(url), workflows.load_registry())
        else:
            site = open_site(url, communities=COMMUNITIES, sqlite_synchronous="OFF")
            start = time.perf_counter()
            have = build(site, args.events)
            print(f"  built {have:,} events in {time.perf_counter() - start:.0f} s")
            site.close()
            z = engine.Zizhi(engine.Database(url), workflows.load_registry())
        results = time_verify(z, args.runs)
        z.db.dispose()
        rates = [checked / spent for spent, checked, _ in results]
        print(
            f"{kind}: {results[0][1]:,} events, verify best {max(rates):,.0f} events/s, "
            f"median {statistics.median(rates):,.0f} events/s "
            f"(loads per run: {'; '.join(load for _, _, load in results)})"
        )
    finally:
        if args.keep or args.reuse:
            print(f"  kept: {url}", file=sys.stderr)
        else:
            _drop(url)


def main() -> None:
    clean_up_when_terminated()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--keep", action="store_true", help="leave the database in place")
    parser.add_argument("--reuse", help="a database this script kept: time verify only")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "all" else [args.db]
    if args.reuse:
        kinds = ["sqlite" if args.reuse.startswith("sqlite") else "postgresql"]
    print(f"# {describe_environment(postgresql='postgresql' in kinds)}; {vars(args)}")
    for kind in kinds:
        run(kind, args)


if __name__ == "__main__":
    main()
