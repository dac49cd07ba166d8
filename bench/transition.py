"""One engine transition against the same rows written by hand, at the same durability.

    .venv/bin/python bench/transition.py [--n 2000] [--runs 5] [--db sqlite|postgresql|all]

Three paths, each timed as one transaction per call, back to back on one thread:

* ``cancel``: ``engine.fire(…, "cancel")`` on a project with nothing reserved — a transition
  with no ledger effect (lock project, lock chain head, one event, save project, move head);
* ``approve``: the council's vote, which reserves the budget (adds the fund account's
  conditional update, the project's reserved amount, a ledger entry and its event);
* ``expense``: ``engine.record_expense`` (invoice check, expense row, reserved → spent on
  project and account, ledger entry, two events).

Each is compared with ``bench/raw.py``: plain ``sqlite3`` (WAL, same ``synchronous``) or plain
``psycopg`` issuing the same statements in the same order. Both sides run on the same
database, warmed up, alternating; the table shows the median of ``--runs`` batches of ``--n``.
Afterwards every history chain is verified and every fund account re-added, which proves the
hand-written side wrote what the engine would have.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from common import (
    VOTE,
    Comparison,
    Site,
    check_database,
    clean_up_when_terminated,
    compare,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    print_comparisons,
    project_in_implementation,
    projects_in_review,
    sqlite_url,
)
from raw import RawWriter

import engine

PATHS = ("cancel", "approve", "expense")
Prepared = tuple[Callable[[Any], object], Callable[[Any], object], Sequence[Any], Sequence[Any]]


def prepare_cancel(site: Site, raw: RawWriter, count: int) -> Prepared:
    ids = open_projects(site, "c1", 2 * count)
    # Interleaved ids, so neither side's rows sit in a warmer part of the table.
    return (
        lambda pid: engine.fire(site.z, site.committee, pid, "cancel", {"reason": "撤销"}),
        lambda pid: raw.cancel(pid, "撤销"),
        ids[0::2],
        ids[1::2],
    )


def prepare_approve(site: Site, raw: RawWriter, count: int) -> Prepared:
    ids = projects_in_review(site, "c1", 2 * count, budget_fen=100)
    return (
        lambda pid: engine.fire(site.z, site.committee, pid, "approve", VOTE),
        lambda pid: raw.approve(pid, VOTE),
        ids[0::2],
        ids[1::2],
    )


def prepare_expense(site: Site, raw: RawWriter, count: int) -> Prepared:
    # One project per side, each expense spending 1 fen of what its approval reserved.
    by_engine = project_in_implementation(site, "c1", budget_fen=count)
    by_hand = project_in_implementation(site, "c1", budget_fen=count)

    def expense(invoice: str) -> dict[str, Any]:
        return {"amount_fen": 1, "payee": "五金店", "invoice_no": invoice, "description": "灯具"}

    return (
        lambda inv: engine.record_expense(site.z, site.committee, by_engine, expense(inv)),
        lambda inv: raw.expense(by_hand, expense(inv)),
        [f"E{i}" for i in range(count)],
        [f"R{i}" for i in range(count)],
    )


PREPARE = {"cancel": prepare_cancel, "approve": prepare_approve, "expense": prepare_expense}


def bench_database(url: str, args: argparse.Namespace) -> list[Comparison]:
    site = open_site(url, sqlite_synchronous=args.sqlite_sync)
    who = {
        "actor": site.committee.id,
        "role": site.committee.role.value,
        "communities": site.committee.communities,
    }
    if site.backend == "sqlite":
        raw = RawWriter.sqlite(url.removeprefix("sqlite:///"), synchronous=args.sqlite_sync, **who)
        label = f"sqlite {args.sqlite_sync}"
    else:
        raw = RawWriter.postgresql(url, **who)
        label = "postgresql"
    per_side = args.warmup + args.runs * args.n
    results = []
    try:
        for path in args.paths:
            started = time.perf_counter()
            engine, by_hand, engine_items, raw_items = PREPARE[path](site, raw, per_side)
            print(
                f"  {label} {path}: prepared in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            result = compare(
                f"{label} {path}",
                engine,
                by_hand,
                engine_items,
                raw_items,
                runs=args.runs,
                n=args.n,
                warmup=args.warmup,
            )
            print(
                f"  {label} {path}: engine {result.engine:,.0f} µs/tx, raw {result.raw:,.0f} µs/tx",
                file=sys.stderr,
            )
            results.append(result)
        print(f"  {label}: {check_database(site)}", file=sys.stderr)
    finally:
        raw.close()
        site.close()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="transactions per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (median)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed transactions first")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}"
    )
    parser.add_argument(
        "--sqlite-sync",
        default="FULL",
        choices=("OFF", "NORMAL", "FULL"),
        help="PRAGMA synchronous on both sides (the engine's default is FULL)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create (and drop) the benchmark's database",
    )
    args = parser.parse_args(argv)
    clean_up_when_terminated()
    args.paths = [p for p in args.paths.split(",") if p]
    if unknown := set(args.paths) - set(PATHS):
        parser.error(f"unknown paths {sorted(unknown)}")

    environment = describe_environment(postgresql=args.db != "sqlite", admin_url=args.pg_admin_url)
    print(f"# {environment}; n={args.n}, runs={args.runs}, warmup={args.warmup}")
    results: list[Comparison] = []
    if args.db in ("sqlite", "all"):
        with sqlite_url() as url:
            results += bench_database(url, args)
    if args.db in ("postgresql", "all"):
        with pg_url(args.pg_admin_url) as url:
            results += bench_database(url, args)
    print_comparisons(results)


if __name__ == "__main__":
    main()
