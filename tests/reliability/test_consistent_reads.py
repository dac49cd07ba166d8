"""Reads that span statements see one moment, even while other processes write.

Three writer processes (``tests/reliability/writer.py``) keep appending to their
communities' chains and ledgers while this process runs ``verify``, exports the history and
reads the statement over and over. Under READ COMMITTED on PostgreSQL, verify read the chain
heads at one moment and the events at a later one and reported "末尾事件缺失" about a history
nobody touched; every read must now see one snapshot and never cry wolf.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import engine
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.e2e.server import REPO
from tests.factories import World

WRITERS = 3
ROUNDS = 12


@contextmanager
def writers(url: str, groups: list[list[str]]) -> Iterator[list[dict[str, Any]]]:
    """Start one writer per group of communities, release them together, stop them on exit;
    yields the list that receives each writer's report."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.writer"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in groups
    ]
    reports: list[dict[str, Any]] = []
    try:
        for proc, group in zip(procs, groups, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"url": url, "communities": group}) + "\n")
            proc.stdin.flush()
        deadline = time.monotonic() + 300  # a safety net: writers are ready in seconds
        for proc in procs:
            assert proc.stdout is not None
            ready = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))[0]
            line = proc.stdout.readline() if ready else ""
            assert line.strip() == "ready", f"a writer did not start: {line!r}"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        yield reports
        for proc in procs:
            out, err = proc.communicate("stop\n", timeout=300)
            assert proc.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _events(z: Zizhi) -> int:
    return engine.verify(z, CLI).checked


def test_verify_export_and_statement_agree_with_themselves_under_writers(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    communities = [world.community() for _ in range(WRITERS * 2)]
    groups = [communities[i::WRITERS] for i in range(WRITERS)]
    url = fresh_z.db.url.render_as_string(hide_password=False)
    checked = []
    with writers(url, groups) as reports:
        # Wait (by progress, not by time) until every writer has committed something.
        for _ in range(10_000):
            if _events(fresh_z) >= len(communities) * 4:
                break
        for _ in range(ROUNDS):
            report = engine.verify(fresh_z, CLI)
            assert report.ok, report.first_bad
            checked.append(report.checked)
            exported = list(engine.stream_events(fresh_z, CLI, engine.EventFilter(), batch=7))
            # One snapshot: each event once, in feed order (engine.store.feed: not id order,
            # and a chain's newest events may wait for an older transaction to finish).
            seqs: dict[str, list[int]] = {}
            for event in exported:
                seqs.setdefault(event.chain, []).append(event.seq)
            assert len(exported) == len({e.id for e in exported})
            for chain, got in seqs.items():
                assert len(got) == len(set(got)), chain
            lines = engine.statement(
                fresh_z, CLI, communities[0], "self_governance", 2030, limit=500
            ).items
            for before, after in zip(lines, lines[1:], strict=False):
                assert after.allocated_fen == before.allocated_fen + after.amount_fen
    assert all(not r["errors"] for r in reports), reports
    assert all(r["done"] > 0 for r in reports), reports
    # The writers were still writing while verify ran: what it saw kept growing.
    assert checked[-1] > checked[0], checked
    assert engine.verify(fresh_z, CLI).ok
