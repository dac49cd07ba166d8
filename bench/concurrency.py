"""Throughput of threads firing transitions in different communities, or all in one.

    .venv/bin/python bench/concurrency.py [--threads 1,2,4,8] [--per-thread 300]
                                          [--db sqlite|postgresql|all]

Each of T threads cancels its own projects (one transaction each, ``engine.fire``), either
every thread in a community of its own (``spread``) or every thread in the same community
(``same``). A writer locks its project row and then its community's history-chain head until
commit, so on PostgreSQL writers of one community take turns — fsync included — while writers
of different communities overlap and share WAL flushes. SQLite has one writer per database
whatever the community: the engine queues its threads on one lock, so both layouts should
give the single-thread rate.

Reported: transactions per second over all threads (wall clock from a common start), and the
median and 95th-percentile latency of one transaction as its thread saw it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence

from common import (
    Site,
    check_database,
    clean_up_when_terminated,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    sqlite_url,
)

import engine

WARMUP = 10  # untimed transactions per thread: opens its pooled connection, fills caches


def run_threads(site: Site, work: list[list[int]]) -> tuple[float, list[float]]:
    """Fire ``cancel`` on each thread's projects; (wall seconds, every latency in µs)."""
    start_line = threading.Barrier(len(work) + 1)
    latencies: list[list[float]] = [[] for _ in work]
    failures: list[BaseException] = []

    def worker(ids: list[int], mine: list[float]) -> None:
        try:
            for project_id in ids[:WARMUP]:
                engine.fire(site.z, site.committee, project_id, "cancel", {"reason": "撤销"})
            start_line.wait()
            for project_id in ids[WARMUP:]:
                began = time.perf_counter()
                engine.fire(site.z, site.committee, project_id, "cancel", {"reason": "撤销"})
                mine.append((time.perf_counter() - began) * 1e6)
        except BaseException as exc:  # reported by the main thread, which must not hang
            failures.append(exc)
            start_line.abort()

    threads = [
        threading.Thread(target=worker, args=(ids, mine))
        for ids, mine in zip(work, latencies, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        start_line.wait()
    except threading.BrokenBarrierError:
        pass
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if failures:
        raise failures[0]
    return wall, [us for mine in latencies for us in mine]


def bench_database(url: str, thread_counts: Sequence[int], per_thread: int) -> list[str]:
    communities = [f"c{i}" for i in range(max(thread_counts))]
    site = open_site(url, communities=communities, pool_size=max(thread_counts))
    label = "sqlite FULL" if site.backend == "sqlite" else "postgresql"
    lines = []
    try:
        for threads in thread_counts:
            for layout in ("spread", "same"):
                work = [
                    open_projects(
                        site, communities[i] if layout == "spread" else "c0", WARMUP + per_thread
                    )
                    for i in range(threads)
                ]
                wall, latencies = run_threads(site, work)
                rate = threads * per_thread / wall
                p95 = statistics.quantiles(latencies, n=20)[-1]
                lines.append(
                    f"{label:<12} {threads:>7} {layout:<7} {rate:>8,.0f} "
                    f"{statistics.median(latencies):>10,.0f} {p95:>10,.0f}"
                )
                print("  " + lines[-1], file=sys.stderr)
        print(f"  {label}: {check_database(site)}", file=sys.stderr)
    finally:
        site.close()
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2,4,8", help="comma-separated thread counts")
    parser.add_argument("--per-thread", type=int, default=300, help="timed transactions each")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    args = parser.parse_args(argv)
    clean_up_when_terminated()
    thread_counts = [int(t) for t in args.threads.split(",")]

    print(
        f"# {describe_environment(postgresql=args.db != 'sqlite')}; "
        f"{args.per_thread} transactions per thread"
    )
    lines = []
    if args.db in ("sqlite", "all"):
        with sqlite_url() as url:
            lines += bench_database(url, thread_counts, args.per_thread)
    if args.db in ("postgresql", "all"):
        with pg_url() as url:
            lines += bench_database(url, thread_counts, args.per_thread)
    print(
        f"{'database':<12} {'threads':>7} {'layout':<7} {'tx/s':>8} {'p50 µs':>10} {'p95 µs':>10}"
    )
    print("-" * 58)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
