"""Does a transition or a read cost more as the history grows? Figures at 10k, 100k, 1M events.

    .venv/bin/python bench/growth.py [--sizes 10000,100000,1000000] [--n 200] [--runs 3]
        [--db sqlite|postgresql|all]

The store is grown through the engine's own write path (durability off while growing, so
it takes minutes, not hours): expenses of one fen on a long-running project in each of
``COMMUNITIES`` communities, each expense two events (``expense.recorded``,
``ledger.spent``) on its community's chain, a ledger entry and an expense row. When it
reaches each size, a checkpoint is signed (as the dispatcher's daily round does on a live
server, extending the Merkle tree over every event) and the database is copied as it
stands (SQLite's backup API; PostgreSQL's ``CREATE DATABASE … TEMPLATE``). Then the copies
take turns, ``--runs`` rounds, each timing at full durability with no filler running:

* writes: ``cancel`` of a fresh project, ``approve`` of a project in review (which reserves);
* reads, as the pages and the API make them: a project, a community's project list, a
  fresh project's history, the fund figures, the first page of the fund statement, and audit
  pages filtered by what matches little (a type no event has, an actor, the last minute) —
  the filters that would walk the whole events table without an index.

Because the sizes take turns, whatever else loads the machine falls on every size alike.
Each figure is the median of the rounds' medians of ``--n`` calls (µs). Flat across the
sizes is the goal; the verification of the grown store re-checks every chain, so a bench
that wrote nonsense fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from common import (
    VOTE,
    Site,
    check_database,
    clean_up_when_terminated,
    copy_of,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    projects_in_review,
    sqlite_url,
)

import engine
from engine.model import Principal, Role
from engine.store.tables import events

COMMUNITIES = [f"c{i}" for i in range(1, 21)]
FILLER_BUDGET_FEN = 5_000_000  # one fen per expense: room for 5M expenses per project


class Store:
    """The database being grown, with the long-running projects the filler spends on."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.filler = [
            _in_implementation(site, community, FILLER_BUDGET_FEN) for community in COMMUNITIES
        ]
        self.invoices = 0

    def events(self) -> int:
        with self.site.z.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())

    def grow_to(self, size: int) -> None:
        have = self.events()
        started, start_count = time.monotonic(), have
        while have < size:
            for project_id in self.filler:
                self.invoices += 1
                engine.record_expense(
                    self.site.prep,
                    self.site.committee,
                    project_id,
                    {
                        "amount_fen": 1,
                        "payee": "保洁公司",
                        "invoice_no": f"F{self.invoices:09d}",
                        "description": "日常保洁",
                    },
                )
            have += 2 * len(self.filler)
            if self.invoices % 5000 < len(self.filler):
                rate = (have - start_count) / max(time.monotonic() - started, 1e-9)
                print(f"  {have:,} events ({rate:,.0f}/s while growing)", file=sys.stderr)
        # What the dispatcher's daily round does on a live server: a signed checkpoint, the
        # Merkle tree extended over everything written (``since=`` pages seek through it).
        engine.publish_checkpoint(self.site.prep, force=True)
        self.have = self.events()


def _in_implementation(site: Site, community: str, budget_fen: int) -> int:
    (project_id,) = projects_in_review(site, community, 1, budget_fen=budget_fen)
    engine.fire(site.prep, site.committee, project_id, "approve", VOTE)
    return project_id


def _median_us(call: Callable[[Any], object], items: list[Any]) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def measure(site: Site, n: int) -> dict[str, float]:
    z, committee = site.z, site.committee
    auditor = Principal(id="token:growth-auditor", name="审计", role=Role.auditor)
    c1 = COMMUNITIES[0]
    fresh = open_projects(site, c1, n)
    review = projects_in_review(site, c1, n, budget_fen=100)
    recent = engine.EventFilter(since=z.clock() - timedelta(minutes=1))
    nobody = engine.EventFilter(type="year.closed")
    actor = engine.EventFilter(actor="token:growth-nobody")
    return {
        "cancel (write)": _median_us(
            lambda p: engine.fire(z, committee, p, "cancel", {"reason": "撤销"}), fresh
        ),
        "approve (write)": _median_us(
            lambda p: engine.fire(z, committee, p, "approve", VOTE), review
        ),
        "get project": _median_us(lambda p: engine.get_project(z, committee, p), fresh),
        "list projects (50)": _median_us(
            lambda _: engine.list_projects(z, committee, community_id=c1, limit=50), fresh
        ),
        "project history": _median_us(lambda p: engine.project_history(z, committee, p), review),
        "funds": _median_us(lambda _: engine.funds(z, committee, c1), fresh),
        "statement page (100)": _median_us(
            lambda _: engine.statement(z, committee, c1, "self_governance", site.year, limit=100),
            fresh,
        ),
        "audit: type none has": _median_us(
            lambda _: engine.query_events(z, auditor, nobody, limit=100), fresh
        ),
        "audit: rare actor": _median_us(
            lambda _: engine.query_events(z, auditor, actor, limit=100), fresh
        ),
        "audit: last minute": _median_us(
            lambda _: engine.query_events(z, auditor, recent, limit=100), fresh
        ),
    }


def bench_database(url: str, args: argparse.Namespace) -> list[tuple[int, dict[str, float]]]:
    site = open_site(url, communities=COMMUNITIES)
    store = Store(site)
    with ExitStack() as copies:
        grown: list[tuple[int, str]] = []
        for size in args.sizes:
            store.grow_to(size)
            site.close()  # PostgreSQL copies a database no one is connected to
            grown.append((store.have, copies.enter_context(copy_of(url))))
            print(f"  copied at {store.have:,} events", file=sys.stderr)
        print(f"  {check_database(site)}", file=sys.stderr)
        site.close()
        sites = [
            (have, open_site(copy, communities=COMMUNITIES, existing=True)) for have, copy in grown
        ]
        rounds: dict[int, list[dict[str, float]]] = {have: [] for have, _ in sites}
        try:
            for run in range(args.runs):
                for have, copy_site in sites if run % 2 == 0 else reversed(sites):
                    print(f"  round {run + 1}: measuring at {have:,} events…", file=sys.stderr)
                    rounds[have].append(measure(copy_site, args.n))
        finally:
            for _, copy_site in sites:
                copy_site.close()
    return [
        (have, {name: statistics.median(r[name] for r in runs) for name in runs[0]})
        for have, runs in rounds.items()
    ]


@contextmanager
def database(kind: str) -> Iterator[str]:
    with sqlite_url() if kind == "sqlite" else pg_url() as url:
        yield url


def main() -> None:
    clean_up_when_terminated()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10_000, 100_000]
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="rounds of turns across the sizes")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "all"], default="sqlite")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "all" else [args.db]
    print(f"# {describe_environment(postgresql='postgresql' in kinds)}; {vars(args)}")
    for kind in kinds:
        with database(kind) as url:
            rows = bench_database(url, args)
        names = list(rows[0][1])
        print(f"\n{kind}: median µs per call")
        print(f"{'':<22}" + "".join(f"{size:>14,}" for size, _ in rows))
        for name in names:
            print(f"{name:<22}" + "".join(f"{figures[name]:>14,.0f}" for _, figures in rows))


if __name__ == "__main__":
    main()
