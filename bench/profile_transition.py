"""Where an engine transition's time goes.

    .venv/bin/python bench/profile_transition.py [--path cancel|approve|expense]
        [--db sqlite|postgresql] [--mode phases|cprofile] [--n 2000]

``--mode phases`` (the default) runs ``--n`` engine transactions with a ``perf_counter``
wrapped around each phase, in this process only (the engine's code is not changed): the
driver executing statements and committing (the commit is where the fsync is), SQLAlchemy
around them, and the engine's own steps (deciding, hashing the history, building records and
views). Each phase is counted exclusive of the phases inside it; what no phase covers is the
use case's own glue. The wrappers' cost is measured on an empty function and shown apart.

``--mode cprofile`` adds up cProfile's per-function own time by library instead. The profiler
slows Python code far more than C calls, so its Python shares are upper bounds; ``--top``
also lists the costliest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import time
import timeit
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from common import (
    Site,
    clean_up_when_terminated,
    describe_environment,
    open_site,
    pg_url,
    sqlite_url,
)
from raw import RawWriter
from sqlalchemy.engine import Connection
from sqlalchemy.engine.result import Result
from transition import PREPARE

import engine.model
import engine.rules.workflow
import engine.store.history
import engine.usecases.projects

WARMUP = 200


# --- phases ---------------------------------------------------------------------------------


class Phases:
    """Exclusive time per phase: a phase entered inside another is taken out of the outer."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls = 0
        self._stack: list[list[float]] = []  # per open phase: [start, time in inner phases]

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        own, stack, clock = self.own, self._stack, time.perf_counter

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            frame = [clock(), 0.0]
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = clock() - frame[0]
                stack.pop()
                own[phase] += elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed

        return timed


def wrapper_cost() -> float:
    """Seconds one timing wrapper adds to a call, measured on a function doing nothing."""

    def nothing() -> None:
        return None

    timed = Phases().wrap("calibration", nothing)
    bare = min(timeit.repeat(nothing, number=100_000, repeat=5))
    wrapped = min(timeit.repeat(timed, number=100_000, repeat=5))
    return (wrapped - bare) / 100_000


DRIVER_EXECUTE = "driver: execute statements"
DRIVER_COMMIT = "driver: commit (fsync on SQLite FULL / PostgreSQL)"
SA_STATEMENTS = "SQLAlchemy: execute + fetch, around the driver"
SA_TRANSACTION = "SQLAlchemy: begin / commit, around the driver"
GLUE = "engine: use-case glue (Change, ledger, save, …)"
WRAPPERS = "the timing wrappers themselves (estimated)"


@contextmanager
def instrumented(site: Site, phases: Phases) -> Iterator[None]:
    """Wrap the phases' functions for the duration; everything is put back afterwards."""
    targets: list[tuple[Any, str, str]] = [
        (Connection, "execute", SA_STATEMENTS),
        (Connection, "exec_driver_sql", SA_STATEMENTS),
        (Result, "first", SA_STATEMENTS),
        (Result, "one", SA_STATEMENTS),
        (Result, "scalar_one", SA_STATEMENTS),
        (Connection, "commit", SA_TRANSACTION),
        (Connection, "begin", SA_TRANSACTION),
        (site.z.db.engine.dialect, "do_execute", DRIVER_EXECUTE),
        (site.z.db.engine.dialect, "do_execute_no_params", DRIVER_EXECUTE),
        (site.z.db.engine.dialect, "do_commit", DRIVER_COMMIT),
        (
            engine.rules.workflow.Workflow,
            "decide",
            "engine: Workflow.decide (state machine, fields)",
        ),
        (engine.store.history, "canonical_json", "engine: history JSON + sha256"),
        (engine.store.history, "event_hash", "engine: history JSON + sha256"),
        (engine.usecases.projects, "_view", "engine: ProjectView for the caller"),
    ]
    with ExitStack() as undo:
        for owner, name, phase in targets:
            if name in vars(owner):
                undo.callback(setattr, owner, name, vars(owner)[name])
            else:  # inherited, or a method of an instance: remove the wrapper again
                undo.callback(delattr, owner, name)
            setattr(owner, name, phases.wrap(phase, getattr(owner, name)))
        # A classmethod: wrap the bound method, put the classmethod itself back afterwards.
        record = engine.model.ProjectRecord
        undo.callback(setattr, record, "from_row", vars(record)["from_row"])
        record.from_row = staticmethod(  # type: ignore[method-assign]
            phases.wrap("engine: row → ProjectRecord", record.from_row)
        )
        yield


def run_phases(site: Site, engine_tx: Callable[[Any], object], items: Sequence[Any]) -> None:
    n = len(items)
    phases = Phases()
    with instrumented(site, phases):
        transaction = phases.wrap(GLUE, engine_tx)
        start = time.perf_counter()
        for item in items:
            transaction(item)
        wall = time.perf_counter() - start
    # The wrappers' own cost would otherwise be counted as the glue's.
    overhead = phases.calls * wrapper_cost()
    phases.own[GLUE] -= overhead
    phases.own[WRAPPERS] = overhead
    print(f"{'phase':<52} {'µs/tx':>7} {'share':>7}")
    for phase, own in sorted(phases.own.items(), key=lambda kv: -kv[1]):
        print(f"{phase:<52} {own / n * 1e6:>7,.0f} {own / wall:>7.1%}")
    print(f"{'total, with the timing wrappers':<52} {wall / n * 1e6:>7,.0f}")
    print(f"({phases.calls / n:.0f} timed calls per transaction)")


# --- cProfile -------------------------------------------------------------------------------

_FILE_LAYERS = (
    # (part of a profiled function's file path, the layer it belongs to)
    ("/psycopg", "psycopg + server round trips"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/transitions/", "transitions"),
    ("/pydantic", "pydantic"),
    ("/engine/", "engine (ours)"),
    ("/bench/", "benchmark loop"),
)


def layer_of(filename: str, name: str) -> str:
    if filename == "~":  # a built-in, named like "<method 'commit' of 'sqlite3.Connection'…>"
        if "sqlite3" in name:
            return "sqlite3: commit" if "commit" in name else "sqlite3: execute / fetch"
        if "psycopg" in name:
            return "psycopg + server round trips"
        return "Python stdlib and built-ins"
    for part, layer in _FILE_LAYERS:
        if part in filename:
            return layer
    return "Python stdlib and built-ins"


def run_cprofile(engine_tx: Callable[[Any], object], items: Sequence[Any], top: int) -> None:
    n = len(items)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for item in items:
        engine_tx(item)
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    by_layer: dict[str, float] = defaultdict(float)
    rows = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in rows.items():
        by_layer[layer_of(filename, name)] += own
    total = sum(by_layer.values())
    print(f"{'layer':<32} {'µs/tx':>8} {'share':>7}")
    for layer, own in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(f"{layer:<32} {own / n * 1e6:>8,.0f} {own / total:>7.1%}")
    print(f"{'total, under the profiler':<32} {wall / n * 1e6:>8,.0f}")
    if top:
        print()
        stats.sort_stats("tottime").print_stats(top)


# --- driver -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--path", choices=sorted(PREPARE), default="cancel")
    parser.add_argument("--mode", choices=("phases", "cprofile"), default="phases")
    parser.add_argument("--sqlite-sync", default="FULL", choices=("OFF", "NORMAL", "FULL"))
    parser.add_argument("--top", type=int, default=0, help="cprofile: list the N costliest")
    args = parser.parse_args(argv)
    clean_up_when_terminated()

    print(f"# {describe_environment(postgresql=args.db != 'sqlite')}")
    label = f"sqlite {args.sqlite_sync}" if args.db == "sqlite" else "postgresql"
    with sqlite_url() if args.db == "sqlite" else pg_url() as url:
        site = open_site(url, sqlite_synchronous=args.sqlite_sync)
        who = {
            "actor": site.committee.id,
            "role": site.committee.role.value,
            "communities": site.committee.communities,
        }
        raw = (
            RawWriter.sqlite(url.removeprefix("sqlite:///"), synchronous=args.sqlite_sync, **who)
            if args.db == "sqlite"
            else RawWriter.postgresql(url, **who)
        )
        try:
            engine_tx, _raw_tx, items, _raw_items = PREPARE[args.path](site, raw, WARMUP + args.n)
            for item in items[:WARMUP]:  # statement caches, pooled connections
                engine_tx(item)
            print(f"# engine {args.path} on {label}, {args.n} transactions, {args.mode}")
            if args.mode == "phases":
                run_phases(site, engine_tx, items[WARMUP:])
            else:
                run_cprofile(engine_tx, items[WARMUP:], args.top)
        finally:
            raw.close()
            site.close()


if __name__ == "__main__":
    main()
