"""What the webhook outbox costs a transition: with the hook off, 0, 1 and 10 subscriptions.

    .venv/bin/python bench/webhooks.py [--n 500] [--runs 5] [--path cancel|approve] [--db …]

Each configuration times ``engine.fire`` one transaction per call, back to back on one
thread, at full durability:

* ``hook off``: ``engine.store.outbox.enqueue`` replaced by a no-op and the project's lock
  statement without its read of the active subscriptions' count — the write path as it
  was before webhooks;
* ``0 subscriptions``: the lock statement reads the count (0), and the hook stops there;
* ``1`` and ``10 subscriptions`` (each to ``*``, so every event of the change is queued for
  each): the hook reads the change's events, the project and its community, builds the
  message and inserts one delivery per subscription.

No dispatcher runs: only the write path is measured. The configurations take turns within
every run (subscriptions are enabled or disabled between turns), so the machine's load falls
on all alike; the table shows the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from common import (
    VOTE,
    check_database,
    clean_up_when_terminated,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    projects_in_review,
    sqlite_url,
    time_batch,
)

import engine
from engine import CLI, UrlGuard, parse_networks, subscriptions
from engine.store import outbox, uow

# The project's lock as it was before webhooks: no scalar subquery on webhook_state.
LOCK_BEFORE_WEBHOOKS = uow.lock_project(sa.null())
CONFIGS = ("hook off", "0 subscriptions", "1 subscription", "10 subscriptions")
GUARD = UrlGuard(allowed=parse_networks("127.0.0.0/8"))


def bench_database(url: str, args: argparse.Namespace) -> list[tuple[str, list[float]]]:
    site = open_site(url)
    per_config = args.warmup + args.runs * args.n
    count = per_config * len(CONFIGS)
    print(f"  preparing {count} projects…", file=sys.stderr)
    if args.path == "approve":
        ids = projects_in_review(site, "c1", count, budget_fen=100)
        data: dict[str, Any] = VOTE
    else:
        ids = open_projects(site, "c1", count)
        data = {"reason": "撤销"}
    hooks = [
        subscriptions.create_subscription(
            site.prep, CLI, GUARD, url=f"http://127.0.0.1:9/hook{i}", events=["*"]
        ).id
        for i in range(10)
    ]
    enabled = set(hooks)
    real_enqueue = outbox.enqueue
    real_lock = uow.LOCK_PROJECT

    def configure(config: str) -> None:
        want = {"0 subscriptions": 0, "1 subscription": 1, "10 subscriptions": 10}.get(config, 0)
        for i, hook in enumerate(hooks):
            active = i < want
            if active != (hook in enabled):
                subscriptions.update_subscription(site.prep, CLI, GUARD, hook, {"active": active})
                (enabled.add if active else enabled.discard)(hook)
        off = config == "hook off"
        outbox.enqueue = real_enqueue if not off else (lambda *a, **k: 0)  # type: ignore[assignment]
        uow.LOCK_PROJECT = real_lock if not off else LOCK_BEFORE_WEBHOOKS

    def fire(project_id: int) -> object:
        return engine.fire(site.z, site.committee, project_id, args.path, data)

    items = {config: ids[i :: len(CONFIGS)] for i, config in enumerate(CONFIGS)}
    times: dict[str, list[float]] = {config: [] for config in CONFIGS}
    try:
        for config in CONFIGS:
            configure(config)
            time_batch(fire, items[config][: args.warmup])
        for run in range(args.runs):
            gc.collect()
            order = CONFIGS if run % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                configure(config)
                start = args.warmup + run * args.n
                batch = items[config][start : start + args.n]
                times[config].append(time_batch(fire, batch) / args.n * 1e6)
        configure("0 subscriptions")
        print(f"  {check_database(site)}", file=sys.stderr)
    finally:
        outbox.enqueue = real_enqueue
        uow.LOCK_PROJECT = real_lock
        site.close()
    label = f"{site.backend} {args.path}"
    return [(f"{label}, {config}", times[config]) for config in CONFIGS]


def print_table(rows: Sequence[tuple[str, list[float]]]) -> None:
    header = f"{'configuration':<42} {'µs/tx':>20} {'tx/s':>8} {'vs hook off':>12}"
    print(header)
    print("-" * len(header))
    base = 0.0
    for name, times in rows:
        median = statistics.median(times)
        if name.endswith("hook off"):
            base = median
        spread = f"{median:,.0f} ({min(times):,.0f}–{max(times):,.0f})"
        print(f"{name:<42} {spread:>20} {1e6 / median:>8,.0f} {median / base:>11.3f}x")
    print("µs/tx: median of the runs (fastest–slowest run in brackets)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="transactions per timed batch")
    parser.add_argument("--runs", type=int, default=5, help="timed batches per configuration")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--path", choices=("cancel", "approve"), default="approve")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "all"), default="all")
    args = parser.parse_args(argv)
    clean_up_when_terminated()
    environment = describe_environment(postgresql=args.db != "sqlite")
    print(f"# {environment}; n={args.n}, runs={args.runs}, path={args.path}")
    rows: list[tuple[str, list[float]]] = []
    if args.db in ("sqlite", "all"):
        with sqlite_url() as url:
            rows += bench_database(url, args)
    if args.db in ("postgresql", "all"):
        with pg_url() as url:
            rows += bench_database(url, args)
    print_table(rows)


if __name__ == "__main__":
    main()
