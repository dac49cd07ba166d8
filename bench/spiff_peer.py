"""Zizhi against a peer: SpiffWorkflow running the same seven steps as a stateless server must.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/spiff_peer.py [--n 700] [--runs 5] [--db sqlite|postgresql|all]

The peer is SpiffWorkflow's BPMN engine with ``bench/peer/seven_steps.bpmn``: the seven
steps of a self-governance project (征集, 筛选, 方案, 评议, 实施, 评估, 反馈) as seven user
tasks in a row. A stateless server keeps no workflow in memory between requests, so each of
its steps is one transaction on the same database at the same durability: lock the
instance's row, load (deserialise) the workflow, complete the ready user task with the
step's fields, run the engine steps, serialise it and write it back, commit. Spiff keeps no
ledger, no hash-chained history and no webhook outbox; Zizhi keeps all three in the same
transaction.

Zizhi's side fires the same seven actions through ``engine.fire`` (``close_collection`` …
``close``), each one transaction at full durability (SQLite ``synchronous=FULL`` in WAL,
PostgreSQL ``synchronous_commit=on``), including the budget reservation on ``approve``.

Both sides work through projects (instances) prepared beforehand, step by step in order;
they take turns every 100 steps within each run (``common.take_turns``), so the machine's load
falls on both alike. The table gives steps per second, median of ``--runs`` (slowest and
fastest in brackets), and Zizhi's steps/s as a multiple of Spiff's.

Last, two floors, taking the same turns. A *bare* step, one durable transaction that locks
one small row, bumps it and commits: Spiff's step over the bare one is the ceiling, no
engine however lean could show more than that multiple of Spiff's steps/s at this
durability on this machine. And *Zizhi's rows by hand* (``bench/raw.py``, ``RawWriter.step``):
the same statements Zizhi issues for each step, the same rows in the same tables and
indexes, hashed the same way, written with plain DB-API calls and no engine. Spiff's step
over that one is the ceiling for an engine that keeps Zizhi's records: the ledger, the
hash-chained history with the indexes auditors read it by, and the outbox.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from common import (
    VOTE,
    backend_of,
    check_database,
    clean_up_when_terminated,
    describe_environment,
    open_projects,
    open_site,
    pg_url,
    sqlite_url,
    take_turns,
)
from raw import RawWriter
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

import engine

BPMN = Path(__file__).resolve().parent / "peer" / "seven_steps.bpmn"

# The seven actions of the self-governance workflow's happy path, with their fields; the
# peer's user tasks take the same fields as their data.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("close_collection", {}),
    ("accept", {"note": "属于房前屋后急难事"}),
    ("submit_plan", {"budget_fen": 100, "plan": "更换楼道灯具"}),
    ("approve", VOTE),
    ("complete_implementation", {"report": "灯具已更换"}),
    ("evaluate", {"score": 5, "report": "居民满意"}),
    ("close", {"notice": "项目已办结", "satisfied": 40, "unsatisfied": 2}),
]


class SpiffServer:
    """Spiff as a stateless server would run it: every step loads and saves the instance."""

    def __init__(self, url: str) -> None:
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec("self_governance")
        self.serializer = BpmnWorkflowSerializer()
        self.postgresql = backend_of(url) == "postgresql"
        if self.postgresql:
            self.conn: Any = psycopg.connect(url)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            # What the engine's connections set (engine/store/db.py).
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS spiff_instances (id INTEGER PRIMARY KEY, state TEXT)"
        )
        self.conn.execute("CREATE TABLE IF NOT EXISTS bare_steps (id INTEGER PRIMARY KEY, n INT)")
        if self.postgresql:
            self.conn.commit()

    def create(self, instance_id: int) -> None:
        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        self._run(
            "INSERT INTO spiff_instances (id, state) VALUES (?, ?)",
            (instance_id, self.serializer.serialize_json(workflow)),
        )
        self._commit()

    def step(self, item: tuple[int, dict[str, Any]]) -> None:
        instance_id, data = item
        self._begin()
        (state,) = self._run(
            "SELECT state FROM spiff_instances WHERE id = ?"
            + (" FOR UPDATE" if self.postgresql else ""),
            (instance_id,),
        ).fetchone()
        workflow = self.serializer.deserialize_json(state)
        (task,) = workflow.get_tasks(state=TaskState.READY)
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
        self._run(
            "UPDATE spiff_instances SET state = ? WHERE id = ?",
            (self.serializer.serialize_json(workflow), instance_id),
        )
        self._commit()

    def bare(self, instance_id: int) -> None:
        """The least a durable step can be: lock one small row, bump it, commit."""
        self._begin()
        found = self._run(
            "SELECT n FROM bare_steps WHERE id = ?" + (" FOR UPDATE" if self.postgresql else ""),
            (instance_id,),
        ).fetchone()
        if found is None:
            self._run("INSERT INTO bare_steps (id, n) VALUES (?, 1)", (instance_id,))
        else:
            self._run("UPDATE bare_steps SET n = n + 1 WHERE id = ?", (instance_id,))
        self._commit()

    def completed(self) -> int:
        rows = self._run("SELECT state FROM spiff_instances", ()).fetchall()
        self._commit()
        return sum(self.serializer.deserialize_json(r[0]).is_completed() for r in rows)

    def _begin(self) -> None:
        if not self.postgresql:
            self.conn.execute("BEGIN IMMEDIATE")

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self.conn.execute(sql.replace("?", "%s") if self.postgresql else sql, params)

    def _commit(self) -> None:
        self.conn.commit()  # on SQLite: ends the BEGIN IMMEDIATE, if one is open

    def close(self) -> None:
        self.conn.close()


def bench_database(url: str, args: argparse.Namespace) -> tuple[str, dict[str, list[float]]]:
    site = open_site(url)
    needed = args.warmup + args.runs * args.n
    count = -(-needed // len(STEPS))  # projects (instances) enough for every step timed
    print(f"  preparing 2 × {count} projects and {count} Spiff instances…", file=sys.stderr)
    ids = open_projects(site, "c1", count)
    by_hand = open_projects(site, "c1", count)
    for project_id in (*ids, *by_hand):
        engine.add_to_project(
            site.prep, site.committee, project_id, {"content": "楼道照明", "resident": "张三"}
        )
    who = {
        "actor": site.committee.id,
        "role": site.committee.role.value,
        "communities": site.committee.communities,
    }
    if site.backend == "sqlite":
        rows = RawWriter.sqlite(url.removeprefix("sqlite:///"), **who)
    else:
        rows = RawWriter.postgresql(url, **who)
    spiff = SpiffServer(url)
    for instance_id in range(1, count + 1):
        spiff.create(instance_id)
    zizhi_items = [(p, action, data) for p in ids for action, data in STEPS]
    spiff_items = [(i, data) for i in range(1, count + 1) for _, data in STEPS]
    rows_items = [(p, action, data) for p in by_hand for action, data in STEPS]

    def zizhi_step(item: tuple[int, str, dict[str, Any]]) -> None:
        engine.fire(site.z, site.committee, *item)

    # The floor under any engine's step here: one durable transaction that locks and bumps
    # one small row. Spiff's step over it bounds what Zizhi's step could be worth against
    # Spiff's, whatever Zizhi did (its ceiling). It takes its turns with the other two.
    bare_items = [i % count + 1 for i in range(needed)]
    spent = take_turns(
        {
            "zizhi": (zizhi_step, zizhi_items),
            "spiff": (spiff.step, spiff_items),
            "bare": (spiff.bare, bare_items),
            "rows": (lambda item: rows.step(*item), rows_items),
        },
        runs=args.runs,
        n=args.n,
        warmup=args.warmup,
    )
    # Whatever was timed really happened: every chain verifies and every fund adds up; the
    # instances and projects worked right through are finished on both sides.
    print(f"  {check_database(site)}", file=sys.stderr)
    done = needed // len(STEPS)
    closed = [
        sum(engine.get_project(site.z, site.committee, p).state == "completed" for p in side)
        for side in (ids, by_hand)
    ]
    finished = spiff.completed()
    assert min(closed) >= done and finished >= done, (closed, finished, done)
    rows.close()
    spiff.close()
    site.close()
    label = f"{backend_of(url)}{' FULL' if backend_of(url) == 'sqlite' else ''}"
    return label, spent


@contextmanager
def database(kind: str) -> Iterator[str]:
    with sqlite_url() if kind == "sqlite" else pg_url() as url:
        yield url


def main() -> None:
    clean_up_when_terminated()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=700, help="steps a side per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=70)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "all"], default="all")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "all" else [args.db]
    print(f"# {describe_environment(postgresql='postgresql' in kinds)}; {vars(args)}")
    rows = []
    for kind in kinds:
        with database(kind) as url:
            rows.append(bench_database(url, args))
    print(
        f"{'database':<14} {'Zizhi steps/s':>22} {'Spiff steps/s':>22} {'Zizhi/Spiff':>12} "
        f"{'rows by hand/s':>22} {'ceiling':>8} {'bare steps/s':>22} {'ceiling':>8}"
    )
    for label, spent in rows:
        z, s, r, b = (statistics.median(spent[k]) for k in ("zizhi", "spiff", "rows", "bare"))
        print(
            f"{label:<14} {_rate(spent['zizhi']):>22} {_rate(spent['spiff']):>22} "
            f"{s / z:>11.2f}x {_rate(spent['rows']):>22} {s / r:>7.2f}x "
            f"{_rate(spent['bare']):>22} {s / b:>7.2f}x"
        )
    print("steps/s: median of the runs (slowest–fastest run in brackets)")
    print("ceilings: Spiff's step over Zizhi's rows by hand, and over the bare step")
    print("bare: lock one small row, bump it, commit")
    print(json.dumps({f"{k}_us": [spent[k] for _, spent in rows] for k in rows[0][1]}))


def _rate(us: list[float]) -> str:
    rates = [1e6 / u for u in us]
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f})"


if __name__ == "__main__":
    main()
