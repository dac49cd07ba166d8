"""Two checkouts' verify on one kept history, taking turns: is a change to verify faster?

    .venv/bin/python bench/verify_ab.py URL BEFORE_DIR AFTER_DIR [--runs 5] [--mode command|cpu]

``URL`` is a history ``bench/verify_speed.py --keep`` left (SQLite or PostgreSQL); the two
directories are checkouts of the repository (``git worktree add ../before <commit>``). Each
run times BEFORE then AFTER, so a machine whose speed drifts (a shared virtual machine can
move by a quarter from one minute to the next) drifts for both alike:

* ``--mode command`` (default): ``zizhi verify`` in a process of its own, start to exit,
  wall time — what an auditor waits for;
* ``--mode cpu``: ``verify_all`` on one process in one read transaction, this process's CPU
  seconds only — the work per event, without the second process or the database server.

Medians with min–max, and each run's figures. Nothing is written to the history.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

_PASSED = re.compile(r"校验通过：(\d+) 条事件")
_CPU_RUN = """
import sys, time
from engine.store.db import Database
from engine.store.facts import verify_all
with Database(sys.argv[1]).read() as conn:
    start = time.process_time()
    checked, fault = verify_all(conn)
    print(checked, time.process_time() - start, fault is None)
"""


def _one(checkout: Path, url: str, mode: str) -> tuple[int, float]:
    """(events checked, seconds) of one run of ``checkout``'s code."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "ZIZHI_DATABASE_URL": url}
    if mode == "command":
        command = [sys.executable, "-m", "api.cli", "verify"]
    else:
        command = [sys.executable, "-c", _CPU_RUN, url]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: verify failed\n{done.stdout}\n{done.stderr}")
    if mode == "command":
        passed = _PASSED.search(done.stdout)
        if passed is None:
            raise SystemExit(f"{checkout}: no verdict in\n{done.stdout}")
        return int(passed.group(1)), wall
    checked, cpu, sound = done.stdout.split()
    if sound != "True":
        raise SystemExit(f"{checkout}: verify found a fault in a history built by the engine")
    return int(checked), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=["command", "cpu"], default="command")
    args = parser.parse_args()
    print(f"# {args.mode}, {args.runs} runs each, load {os.getloadavg()[0]:.2f}")
    seconds: dict[Path, list[float]] = {args.before: [], args.after: []}
    checked = 0
    for run in range(1, args.runs + 1):
        for checkout, times in seconds.items():
            checked, spent = _one(checkout.resolve(), args.url, args.mode)
            times.append(spent)
            print(f"  run {run}: {checkout} {spent:.2f} s", file=sys.stderr)
    unit = "wall s" if args.mode == "command" else "CPU s"
    for checkout, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{checkout}: median {median:.2f} {unit} = {checked / median:,.0f} events/s "
            f"({min(times):.2f}–{max(times):.2f}); runs {' '.join(f'{t:.2f}' for t in times)}"
        )


if __name__ == "__main__":
    main()
