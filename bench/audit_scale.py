"""The audit paths at scale (issue 11 item 5) — a skeleton: build N events fast, time reads.

    .venv/bin/python bench/audit_scale.py [--events 100000] [--db sqlite|postgresql|all]

The history is built through a bulk path that writes the rows the engine writes for a
``demand.created`` event — same columns, same canonical JSON, same hash chain per community
(``engine.store.history.event_hash``), chain heads moved to the last event — many events per
transaction instead of one, so a million events take minutes rather than hours. ``zizhi
verify`` then checks the chains as it would any history. Projects, demands and ledger rows
are not written yet (so the per-project history and the statement are not timed here).

Timed: a filtered page of 100 events from a cursor in the middle (p50/p95), the export of
everything in feed order (events/s, peak RSS of this process), ``verify`` (events/s),
extending the Merkle tree from nothing, a checkpoint when one event was added, inclusion and
consistency proofs (p50/p95).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from bench.common import (  # noqa: E402
    clean_up_when_terminated,
    describe_environment,
    open_site,
    pg_url,
    sqlite_url,
)
from engine.model import CLI, utc_now  # noqa: E402
from engine.store.history import canonical_json, event_hash  # noqa: E402
from engine.store.tables import chain_heads, events  # noqa: E402

BATCH = 5000


def build(site_z: engine.Zizhi, communities: list[str], n: int) -> None:
    """``n`` events spread over the communities' chains, in transactions of BATCH events."""
    with site_z.read() as conn:
        heads = {
            r.chain: (r.seq, r.hash)
            for r in conn.execute(
                sa.select(chain_heads).where(chain_heads.c.chain.in_(communities))
            )
        }
    rng = random.Random(11)
    at = utc_now() - timedelta(days=3650)
    step = timedelta(days=3650) / max(n, 1)
    written = 0
    while written < n:
        rows = []
        for _ in range(min(BATCH, n - written)):
            community = rng.choice(communities)
            seq, prev = heads[community]
            seq += 1
            data = canonical_json({"demand_id": written + 1, "source": "committee"})
            at += step
            digest = event_hash(
                chain=community,
                seq=seq,
                at=at,
                actor="token:bench",
                role="committee",
                community_id=community,
                project_id=None,
                type="demand.created",
                data=data,
                prev_hash=prev,
            )
            rows.append(
                {
                    "chain": community,
                    "seq": seq,
                    "at": at,
                    "actor": "token:bench",
                    "role": "committee",
                    "community_id": community,
                    "project_id": None,
                    "type": "demand.created",
                    "data": data,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            heads[community] = (seq, digest)
            written += 1
        with site_z.db.write() as conn:
            conn.execute(sa.insert(events), rows)
            for chain, (seq, digest) in heads.items():
                conn.execute(
                    sa.update(chain_heads)
                    .where(chain_heads.c.chain == chain)
                    .values(seq=seq, hash=digest)
                )
            conn.commit()


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def run(url: str, n: int, runs: int) -> None:
    communities = [f"c{i}" for i in range(20)]
    site = open_site(url, communities=communities)
    z = site.z
    try:
        start = time.perf_counter()
        build(site.prep, communities, n)
        print(f"  built {n:,} events in {time.perf_counter() - start:.1f} s")

        where = engine.EventFilter(community_id=communities[3])
        middle = engine.query_events(z, CLI, where, limit=500)
        cursor = middle.next_cursor
        p50, p95 = timed(lambda: engine.query_events(z, CLI, where, limit=100, cursor=cursor), runs)
        print(f"  filtered page of 100: p50 {p50:.1f} ms, p95 {p95:.1f} ms")

        start = time.perf_counter()
        count = sum(1 for _ in engine.stream_events(z, CLI, engine.EventFilter()))
        spent = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  export of {count:,} events: {count / spent:,.0f} events/s, peak RSS {rss:.0f} MB")

        start = time.perf_counter()
        report = engine.verify(z, CLI)
        spent = time.perf_counter() - start
        assert report.ok, report.first_bad
        print(f"  verify: {report.checked / spent:,.0f} events/s")

        start = time.perf_counter()
        view = engine.checkpoint(z)
        print(
            f"  Merkle tree over {view.tree_size:,} events built in "
            f"{time.perf_counter() - start:.1f} s"
        )
        engine.record_demand(
            z, site.committee, communities[0], {"content": "新需求", "resident": "李四"}
        )
        p50, p95 = timed(lambda: engine.checkpoint(z), 1)
        print(f"  checkpoint after one more event: {p50:.1f} ms")
        p50, p95 = timed(lambda: engine.checkpoint(z), runs)
        print(f"  checkpoint, nothing new: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        with z.read() as conn:
            ids = [r.id for r in conn.execute(sa.select(events.c.id).limit(2000))]
        rng = random.Random(5)
        p50, p95 = timed(lambda: engine.inclusion_proof(z, CLI, rng.choice(ids)), runs)
        print(f"  inclusion proof: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        size = engine.checkpoint(z).tree_size
        p50, p95 = timed(lambda: engine.consistency_proof(z, CLI, rng.randint(1, size), size), runs)
        print(f"  consistency proof: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    finally:
        site.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    args = parser.parse_args()
    clean_up_when_terminated()
    print(describe_environment(postgresql=args.db != "sqlite"))
    if args.db in ("sqlite", "all"):
        print("SQLite")
        with sqlite_url() as url:
            run(url, args.events, args.runs)
    if args.db in ("postgresql", "all"):
        print("PostgreSQL")
        with pg_url() as url:
            run(url, args.events, args.runs)


if __name__ == "__main__":
    main()
