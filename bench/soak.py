"""Does the server's memory stay flat under sustained load? (issue 8, item 5)

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 4] [--db sqlite|postgresql]
        [--every 15]

``zizhi serve`` (with its webhook dispatcher, as deployed by default) runs as a subprocess on
a fresh database of its own. ``--clients`` threads drive it for ``--minutes``, each in a loop:
a project's whole lifecycle (create, a demand, every action with ``If-Match`` and
``Idempotency-Key``, an expense), then the reads users make (the caller, the project, its
history, the community's list, the funds, the fund statement, an audit page, the web home
page signed in). Every ``--every`` seconds the server process's resident set (``VmRSS`` of it
and its children, from ``/proc``) is sampled with the requests done so far.

Printed: one line per sample, then the resident set after the first minute (warm-up: the
caches and pools filled) against the last sample and the maximum, and the slope of a least-
squares line over the samples after the first minute (MB per 10 minutes). Flat is the goal:
what a long-running server holds must not grow with the requests it has served.

The benchmark writes only to a database it creates.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/http.py: this folder off the path, the repository root on it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402

from bench.common import clean_up_when_terminated, describe_environment, pg_url  # noqa: E402
from bench.http import ACTIONS, BIN, family, free_port, prepare, serve  # noqa: E402
from engine.model import fiscal_year, utc_now  # noqa: E402


def rss_kib(pid: int) -> int:
    """Resident set of a process and its descendants, KiB."""
    total = 0
    for member in family(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status") as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total


class Load:
    """Client threads running lifecycles and reads until told to stop; counts requests."""

    def __init__(self, base: str, community: str, token: str, admin: str) -> None:
        self.base, self.community = base, community
        self.committee = {"Authorization": f"Bearer {token}"}
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.requests = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, **kwargs)
        with self._lock:
            self.requests += 1
        if response.status_code >= 300:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            raise RuntimeError(self.failures[-1])
        return response

    def _post(self, client: httpx.Client, path: str, body: Any, **headers: str) -> Any:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        return self._call(
            client, "POST", path, json=body, headers={**self.committee, **key, **headers}
        )

    def lifecycle(self, client: httpx.Client) -> None:
        project = self._post(
            client,
            "/api/v1/projects",
            {
                "community_id": self.community,
                "workflow": "self_governance",
                "title": "楼道文化营造",
                "category": "居民自治类",
            },
        ).json()
        pid = project["id"]
        version = int(
            self._post(
                client,
                f"/api/v1/projects/{pid}/demands",
                {"content": "楼道堆物", "resident": "高阿姨"},
            )
            .headers.get("ETag", f'"{project["version"] + 1}"')
            .strip('"')
        )
        for action, body in ACTIONS:
            answer = self._post(
                client,
                f"/api/v1/projects/{pid}/actions/{action}",
                body,
                **{"If-Match": f'"{version}"'},
            )
            version = answer.json()["version"]
            if action == "approve":
                spent = self._post(
                    client,
                    f"/api/v1/projects/{pid}/expenses",
                    {
                        # Small, so that a fast machine's ten minutes (some 20,000
                        # lifecycles) stay within the one allocation of the benchmark.
                        "amount_fen": 5_000,
                        "payee": "苏州某物业",
                        "invoice_no": f"F-{uuid.uuid4().hex[:12]}",
                        "description": "清运",
                    },
                )
                version = int(spent.headers["ETag"].strip('"'))
        c, year = self.committee, fiscal_year(utc_now())
        for path, headers, params in [
            ("/api/v1/me", c, {}),
            (f"/api/v1/projects/{pid}", c, {}),
            (f"/api/v1/projects/{pid}/history", c, {}),
            ("/api/v1/projects", c, {"community_id": self.community, "limit": 50}),
            (f"/api/v1/communities/{self.community}/funds", c, {}),
            (
                f"/api/v1/communities/{self.community}/funds/self_governance/{year}/statement",
                c,
                {"limit": 100},
            ),
            ("/api/v1/audit/events", self.admin, {"limit": 100}),
        ]:
            self._call(client, "GET", path, headers=headers, params=params)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=120) as client:
            while not self._stop.is_set():
                try:
                    self.lifecycle(client)
                except (RuntimeError, httpx.TransportError) as exc:
                    self.failures.append(repr(exc))
                    if len(self.failures) > 20:
                        return

    def stop(self) -> None:
        self._stop.set()


def slope_mb_per_10_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (MB) against time, per 10 minutes."""
    xs = [t for t, _ in samples]
    ys = [kib / 1024 for _, kib in samples]
    if len(xs) < 2:
        return 0.0
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mean_x) ** 2 for x in xs)
    return num / den * 600 if den else 0.0


def main() -> None:
    clean_up_when_terminated()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--every", type=float, default=15, help="seconds between samples")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zizhi-soak-")))
        if args.db == "sqlite":
            url = f"sqlite:///{tmp / 'zizhi.db'}"
        else:
            url = stack.enter_context(pg_url())
        print(f"# {describe_environment(postgresql=args.db == 'postgresql')}; {vars(args)}")
        site = prepare(url)
        port = free_port()
        server = stack.enter_context(
            serve(
                "zizhi",
                [str(BIN / "zizhi"), "serve", "--port", str(port)],
                {"ZIZHI_DATABASE_URL": url},
                port,
                tmp / "zizhi.log",
                ready="/healthz",
            )
        )
        load = Load(server.url, site.community, site.committee, site.admin)
        threads = [threading.Thread(target=load.run, daemon=True) for _ in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[tuple[float, int]] = []
        print(f"{'minute':>7} {'requests':>10} {'req/s':>7} {'RSS MB':>8} {'load':>5}")
        last_requests, last_time = 0, started
        try:
            while (now := time.monotonic()) - started < args.minutes * 60:
                time.sleep(min(args.every, args.minutes * 60 - (now - started)))
                now = time.monotonic()
                kib, done = rss_kib(server.process.pid), load.requests
                samples.append((now - started, kib))
                rate = (done - last_requests) / max(now - last_time, 1e-9)
                last_requests, last_time = done, now
                print(
                    f"{(now - started) / 60:>7.2f} {done:>10,} {rate:>7.0f} "
                    f"{kib / 1024:>8.1f} {os.getloadavg()[0]:>5.1f}",
                    flush=True,
                )
                if load.failures and len(load.failures) > 20:
                    break
        finally:
            load.stop()
            for thread in threads:
                thread.join(120)
    if load.failures:
        print(f"{len(load.failures)} failures; first: {load.failures[0]}")
        sys.exit(1)
    warm = [(t, kib) for t, kib in samples if t >= 60] or samples
    first, last = warm[0][1] / 1024, warm[-1][1] / 1024
    peak = max(kib for _, kib in warm) / 1024
    print(
        f"RSS after the first minute {first:.1f} MB, at the end {last:.1f} MB "
        f"({last - first:+.1f} MB), peak {peak:.1f} MB; slope after the first minute "
        f"{slope_mb_per_10_min(warm):+.2f} MB per 10 minutes; {load.requests:,} requests"
    )


if __name__ == "__main__":
    main()
