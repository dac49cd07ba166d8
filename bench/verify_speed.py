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
each run times it on one process and as it chooses by default (two processes from
``verify_parallel.PARALLEL_FROM`` events). The figure is events checked per second of wall
time, with the CPU seconds of this process and of its children (the worker) and the load
beside it: the machine is shared, so wall time depends on what else runs; the CPU seconds
(the PostgreSQL server's not included) do much less.

``--keep`` leaves the database in place and prints where it is (a SQLite file in a
temporary directory, or a PostgreSQL database named ``zizhi_bench_…``); ``--reuse URL``
times verify again on such a database without building. ``--postgresql-from URL`` copies a
history this script built and kept on SQLite, row for row (every table verify reads), into
a fresh PostgreSQL database and times verify there: building a million events through the
engine on PostgreSQL takes far longer than on SQLite, and the rows, hashes included, are
the same. Nothing else is touched.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import resource
import shutil
import statistics
import subprocess
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
from engine.store import tables  # noqa: E402
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


# How each run asks for the check; the engine before the two-process path has no choice.
MODES = {"one process": {"parallel_from": 10**15}, "default": {}}
COMMAND = "zizhi verify"  # the command itself, start to exit, as an auditor runs it
TREE = "verify_tree"  # engine.verify_tree: the Merkle tree's rows against the events
_PASSED = re.compile(r"校验通过：(\d+) 条事件")


def _run_command(url: str) -> int:
    """``zizhi verify`` on ``url`` in a process of its own; the events it reports checked."""
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "ZIZHI_DATABASE_URL": url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    passed = _PASSED.search(done.stdout)
    if done.returncode != 0 or passed is None:
        raise AssertionError(f"zizhi verify failed on a history built by the engine: {done}")
    return int(passed.group(1))


def time_verify(z: engine.Zizhi, runs: int) -> list[tuple[str, float, float, float, int, str]]:
    """(mode, wall s, CPU s of this process, CPU s of its children, events, load) per run;
    the modes are ``engine.verify`` on one process, as it chooses, ``zizhi verify``, and
    ``engine.verify_tree`` (events are the tree's leaves there)."""
    modes: dict[str, dict[str, int]] = dict(MODES)
    if "parallel_from" not in inspect.signature(engine.verify).parameters:
        modes = {"one process": {}}
    modes[COMMAND] = {}
    if hasattr(engine, "verify_tree"):
        # The Merkle tree's rows checked against the events (``zizhi verify --tree``): the
        # tree is first extended over the whole history, as the daily checkpoint would.
        start = time.perf_counter()
        size = engine.checkpoint(z).tree_size
        print(f"  tree of {size:,} leaves in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        modes[TREE] = {}
    url = z.db.url.render_as_string(hide_password=False)
    results = []
    for _ in range(runs):
        for mode, options in modes.items():
            cpu = time.process_time()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            if mode == COMMAND:
                checked = _run_command(url)
            elif mode == TREE:
                tree = engine.verify_tree(z, CLI)
                if not tree.ok:
                    raise AssertionError(
                        f"verify_tree failed on a tree built by the engine: {tree}"
                    )
                checked = tree.leaves
            else:
                report = engine.verify(z, CLI, **options)
                if not report.ok:
                    raise AssertionError(
                        f"verify failed on a history built by the engine: {report}"
                    )
                checked = report.checked
            spent = time.perf_counter() - start
            cpu = time.process_time() - cpu
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            results.append((mode, spent, cpu, worker, checked, _load()))
            print(
                f"  {mode:<12} {checked:,} events in {spent:.2f} s = "
                f"{checked / spent:,.0f} events/s; CPU {cpu:.2f} s here + "
                f"{worker:.2f} s worker (load {_load()})",
                file=sys.stderr,
            )
    return results


def copy_history(source: str, target: str) -> int:
    """Every table verify reads, row for row, from a kept SQLite history into ``target``."""
    into = engine.Database(target)
    into.migrate()
    src = sa.create_engine(source)
    copied = 0
    with src.connect() as reading, into.engine.begin() as writing:
        for table in (
            tables.communities,
            tables.chain_heads,
            tables.events,
            tables.fund_accounts,
            tables.ledger_entries,
            tables.projects,
            tables.demands,
            tables.expenses,
            tables.closed_years,
            tables.api_tokens,
            tables.users,
        ):
            if table not in (tables.events, tables.ledger_entries):  # append-only, and empty
                writing.execute(sa.delete(table))  # what the migrations seeded (the system head)
            rows = reading.execute(sa.select(table)).mappings()
            while batch := rows.fetchmany(5000):
                writing.execute(sa.insert(table), [dict(r) for r in batch])
                copied += len(batch)
    src.dispose()
    into.dispose()
    return copied


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
        if args.postgresql_from:
            start = time.perf_counter()
            copied = copy_history(args.postgresql_from, url)
            print(f"  copied {copied:,} rows in {time.perf_counter() - start:.0f} s")
        elif not args.reuse:
            site = open_site(url, communities=COMMUNITIES, sqlite_synchronous="OFF")
            start = time.perf_counter()
            have = build(site, args.events)
            print(f"  built {have:,} events in {time.perf_counter() - start:.0f} s")
            site.close()
        z = engine.Zizhi(engine.Database(url), workflows.load_registry())
        results = time_verify(z, args.runs)
        z.db.dispose()
        for mode in dict.fromkeys(r[0] for r in results):
            mine = [r for r in results if r[0] == mode]
            rates = [checked / wall for _, wall, _, _, checked, _ in mine]
            cpu = statistics.median(here + worker for _, _, here, worker, _, _ in mine)
            print(
                f"{kind} {mode}: {mine[0][4]:,} events, verify median "
                f"{statistics.median(rates):,.0f} events/s (best {max(rates):,.0f}), "
                f"{mine[0][4] / cpu:,.0f} events per client CPU-second "
                f"(loads: {'; '.join(r[5] for r in mine)})"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{kind}: peak RSS of this process {peak:,.0f} MB")
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
    parser.add_argument(
        "--postgresql-from", help="a SQLite history this script kept: copy it, time verify"
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "all" else [args.db]
    if args.reuse:
        kinds = ["sqlite" if args.reuse.startswith("sqlite") else "postgresql"]
    if args.postgresql_from:
        kinds = ["postgresql"]
    print(f"# {describe_environment(postgresql='postgresql' in kinds)}; {vars(args)}")
    for kind in kinds:
        run(kind, args)


if __name__ == "__main__":
    main()
