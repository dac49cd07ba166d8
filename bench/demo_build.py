"""How long the README's quick start spends building the demo district (issue 12).

Runs ``zizhi demo`` (what ``zizhi serve --demo`` runs before it serves) as a new process in
an empty directory, on a fresh SQLite file, as a newcomer would; prints the wall time and
the CPU time the process got, with the machine's load before and after (on a shared machine
the wall time is mostly waiting for a CPU: compare the CPU time).

    .venv/bin/python bench/demo_build.py [--communities 168] [--years 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZIZHI = Path(sys.executable).with_name("zizhi")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communities", type=int, default=168)
    parser.add_argument("--years", type=int, default=3)
    args = parser.parse_args()
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as directory:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [
                str(ZIZHI),
                "demo",
                "--communities",
                str(args.communities),
                "--years",
                str(args.years),
            ],
            cwd=directory,
            env={**os.environ, "ZIZHI_DATABASE_URL": f"sqlite:///{directory}/zizhi.db"},
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(done.stdout.splitlines()[0])
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s ({cpu / wall:.0%} of one CPU)")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
