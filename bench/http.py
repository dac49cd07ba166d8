"""Zizhi through HTTP against a floor app: server CPU per request, and throughput under load.

Two uvicorn servers run as subprocesses on free loopback ports: ``zizhi serve --no-dispatcher``
on a fresh database of its own (SQLite at ``synchronous=FULL``, or a fresh PostgreSQL
database), and ``bench/floor_app.py`` (FastAPI + raw ``sqlite3`` writing one transition's
rows per request at the same durability, nothing else) on a fresh SQLite file.

**CPU per request.** A client in this process drives ``--n`` projects through a whole
lifecycle (create, a demand, each action with ``If-Match`` and ``Idempotency-Key``, an
expense) and the main GETs, one kind of request at a time. The server's CPU (user + system
of the server process and its children, from ``/proc``) is read before and after each batch,
so what the client, the other agents on the machine or the kernel's scheduling cost does not
count. After every Zizhi batch the floor app serves a batch of the same size (a transition's
rows for a write, one row read for a GET), and the ratio is taken within that turn. The
whole is repeated ``--runs`` times: medians with min–max, and the 1-minute load average at
each figure.

**Throughput.** ``wrk`` (Debian: ``apt-get install wrk``) at 1, 8 and 32 connections
against each server in turn: requests/s and p50/p99 latency, for writes (a pooled demand in
one community / the floor's transition), spread writes (pooled demands going round 16
communities, so that writers do not queue on one chain head) and reads (a project / the
floor's row). With each, the server's CPU per request answered during that run: where
requests/s fall as clients are added, this tells the server's own extra work per request
from time the machine gave to something else.

Run from the repository root:

    .venv/bin/python bench/http.py [--db sqlite|postgresql] [--runs 5] [--n 100]
        [--clients 1,8,32] [--duration 5] [--no-throughput] [--workers 1]

The benchmark writes only to databases it creates; ``--url`` points it at another, which it
refuses if that already holds data unless ``--reuse`` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/http.py``, this file's folder comes first on the path and this file
# would stand in for the standard library's ``http``: take the folder off, put the root on.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
import workflows  # noqa: E402
from bench.common import (  # noqa: E402
    BIG_ALLOCATION_FEN,
    VOTE,
    clean_up_when_terminated,
    describe_environment,
    pg_url,
)
from engine import CLI, Database, Zizhi  # noqa: E402
from engine.model import Fund, fiscal_year, utc_now  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")

# The lifecycle's writes, in order: (kind, action or None, body).
ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("close_collection", {}),
    ("accept", {"note": "属于房前屋后急难事"}),
    ("submit_plan", {"budget_fen": 100_000, "plan": "清理通道"}),
    ("approve", VOTE),
    ("complete_implementation", {"report": "已完成"}),
    ("evaluate", {"score": 4, "report": "效果良好"}),
    ("close", {"notice": "项目已办结", "satisfied": 40, "unsatisfied": 2}),
]
READS = ["GET me", "GET project", "GET list", "GET history", "GET audit events"]


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def family(pid: int) -> Iterator[int]:
    """A process and its living descendants."""
    yield pid
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
            children = f.read().split()
        for child in children:
            with contextlib.suppress(OSError):
                yield from family(int(child))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (living ones)."""
    total = 0.0
    for member in family(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)


@contextlib.contextmanager
def serve(
    name: str, command: list[str], env: dict[str, str], port: int, log: Path, ready: str
) -> Iterator[Server]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # workers start slowly on a loaded machine
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(url + ready, timeout=5).raise_for_status()
                break
            except (httpx.TransportError, httpx.HTTPStatusError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield Server(name, url, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


# --- the Zizhi database -------------------------------------------------------------------------


SPREAD = 16  # communities the "spread" writes go round


@dataclass
class Prepared:
    url: str
    community: str
    committee: str
    admin: str
    spread: list[str] = field(default_factory=list)  # SPREAD more communities
    spread_committee: str = ""  # a committee token covering all of them


def holds_data(url: str) -> bool:
    engine_ = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine_.connect() as conn:
            return bool(sa.inspect(conn).get_table_names())
    finally:
        engine_.dispose()


def prepare(url: str) -> Prepared:
    """A community with a large allocation, a committee token and an admin token; and
    ``SPREAD`` more communities with one committee token covering them all."""
    z = Zizhi(Database(url, sqlite_synchronous="OFF"), workflows.load_registry())
    year = fiscal_year(utc_now())
    try:
        z.db.migrate()
        base = f"hb{uuid.uuid4().hex[:8]}"
        community, spread = base, [f"{base}-s{i}" for i in range(SPREAD)]
        for i, name in enumerate([community, *spread]):
            engine.create_community(
                z,
                CLI,
                id=name,
                name=f"基准社区{i}",
                street="金阊街道",
                district="姑苏区",
                kind="urban",
            )
            engine.set_allocation(
                z, CLI, name, Fund.self_governance.value, year, BIG_ALLOCATION_FEN
            )
        committee = engine.create_token(
            z, CLI, name="基准居委会", role="committee", communities=[community]
        ).token
        spread_committee = engine.create_token(
            z, CLI, name="基准多社区居委会", role="committee", communities=spread
        ).token
        admin = engine.create_token(z, CLI, name="基准管理员", role="admin").token
    finally:
        z.db.dispose()
    assert committee and admin and spread_committee
    return Prepared(url, community, committee, admin, spread, spread_committee)


# --- CPU per request ------------------------------------------------------------------------------


@dataclass
class Figure:
    zizhi_us: list[float] = field(default_factory=list)
    floor_us: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


def batch_cpu(server: Server, requests: Callable[[], None]) -> float:
    before = server.cpu
    requests()
    return server.cpu - before


class Driver:
    """Sends Zizhi's lifecycle and the floor's batches; counts server CPU per turn."""

    def __init__(self, zizhi: Server, floor: Server, site: Prepared, n: int) -> None:
        self.zizhi, self.floor, self.site, self.n = zizhi, floor, site, n
        # Each client idles while the other server takes its turn: give up a kept-alive
        # connection before uvicorn's 5 s keep-alive ends it, or a request sent just as the
        # server closes it fails ("Server disconnected without sending a response").
        limits = httpx.Limits(keepalive_expiry=4.0)
        self.zc = httpx.Client(base_url=zizhi.url, timeout=60, limits=limits)
        self.fc = httpx.Client(base_url=floor.url, timeout=60, limits=limits)
        self.committee = {"Authorization": f"Bearer {site.committee}"}
        self.admin = {"Authorization": f"Bearer {site.admin}"}
        self.figures: dict[str, Figure] = defaultdict(Figure)
        self.floor_projects = [
            self._ok(self.fc.post("/projects", json={"community_id": f"f{i % 4}", "title": "t"}))[
                "id"
            ]
            for i in range(n)
        ]

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        return response.json()

    def _post(self, path: str, body: Any, **headers: str) -> Any:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        return self._ok(self.zc.post(path, json=body, headers={**self.committee, **key, **headers}))

    def turn(self, kind: str, zizhi: Callable[[int], None], floor: str, count: int) -> None:
        """``count`` Zizhi requests, then as many floor requests, CPU read around each."""
        z_cpu = batch_cpu(self.zizhi, lambda: [zizhi(i) for i in range(count)] and None)
        if floor == "write":
            f_cpu = batch_cpu(
                self.floor,
                lambda: (
                    [
                        self._ok(
                            self.fc.post(
                                f"/projects/{self.floor_projects[i % self.n]}/act",
                                json={"note": "同意", "score": i},
                            )
                        )
                        for i in range(count)
                    ]
                    and None
                ),
            )
        else:
            f_cpu = batch_cpu(
                self.floor,
                lambda: (
                    [
                        self._ok(self.fc.get(f"/projects/{self.floor_projects[i % self.n]}"))
                        for i in range(count)
                    ]
                    and None
                ),
            )
        figure = self.figures[kind]
        figure.zizhi_us.append(z_cpu / count * 1e6)
        figure.floor_us.append(f_cpu / count * 1e6)
        figure.ratio.append(z_cpu / f_cpu if f_cpu else float("inf"))
        figure.load.append(os.getloadavg()[0])

    def run(self) -> None:
        n, community = self.n, self.site.community
        projects: list[dict[str, Any]] = [{} for _ in range(n)]

        def create(i: int) -> None:
            projects[i] = self._post(
                "/api/v1/projects",
                {
                    "community_id": community,
                    "workflow": "self_governance",
                    "title": "楼道文化营造",
                    "category": "居民自治类",
                },
            )

        self.turn("POST create", create, "write", n)

        def demand(i: int) -> None:
            self._post(
                f"/api/v1/projects/{projects[i]['id']}/demands",
                {"content": "楼道堆物", "resident": "高阿姨"},
            )
            projects[i]["version"] += 1  # a demand taken up moves the project's version

        self.turn("POST demand", demand, "write", n)
        reads = 3 * n
        for position, (action, body) in enumerate(ACTIONS):

            def act(i: int, action: str = action, body: dict[str, Any] = body) -> None:
                project = projects[i]
                projects[i] = self._post(
                    f"/api/v1/projects/{project['id']}/actions/{action}",
                    body,
                    **{"If-Match": f'"{project["version"]}"'},
                )

            self.turn(f"POST {action}", act, "write", n)
            if action == "approve":

                def expense(i: int) -> None:
                    answer = self.zc.post(
                        f"/api/v1/projects/{projects[i]['id']}/expenses",
                        json={
                            "amount_fen": 50_000,
                            "payee": "苏州某物业",
                            "invoice_no": f"F-{uuid.uuid4().hex[:12]}",
                            "description": "清运",
                        },
                        headers={**self.committee, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    self._ok(answer)
                    # The answer's ETag is the project's version after the expense.
                    projects[i]["version"] = int(answer.headers["ETag"].strip('"'))

                self.turn("POST expense", expense, "write", n)
            if position == 3:
                self._reads(projects, reads)

    def _reads(self, projects: list[dict[str, Any]], count: int) -> None:
        c, a, n = self.committee, self.admin, self.n

        def get(path: str, headers: dict[str, str], **params: Any) -> Callable[[int], None]:
            return lambda i: self._ok(
                self.zc.get(path.format(p=projects[i % n]["id"]), headers=headers, params=params)
            )

        self.turn("GET me", get("/api/v1/me", c), "read", count)
        self.turn("GET project", get("/api/v1/projects/{p}", c), "read", count)
        self.turn(
            "GET list (50)",
            get("/api/v1/projects", c, community_id=self.site.community, limit=50),
            "read",
            count,
        )
        self.turn("GET history", get("/api/v1/projects/{p}/history", c), "read", count)
        self.turn(
            "GET audit events (100)", get("/api/v1/audit/events", a, limit=100), "read", count
        )
        self.turn(
            "GET audit type=",
            get("/api/v1/audit/events", a, type="webhook.created", limit=100),
            "read",
            count,
        )


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    median, low, high = (
        fmt.format(v) for v in (statistics.median(values), min(values), max(values))
    )
    return f"{median} ({low}–{high})"


def print_cpu(figures: dict[str, Figure]) -> None:
    header = f"{'request':<30} {'Zizhi µs CPU':>22} {'floor µs CPU':>18} {'ratio':>20} {'load':>10}"
    print(header)
    print("-" * len(header))
    writes: list[float] = []
    for kind, f in figures.items():
        if kind.startswith("POST"):
            writes.append(statistics.median(f.ratio))
        print(
            f"{kind:<30} {spread(f.zizhi_us):>22} {spread(f.floor_us):>18} "
            f"{spread(f.ratio, '{:.2f}'):>20} {min(f.load):>4.1f}–{max(f.load):.1f}"
        )
    lifecycle_z = sum(
        statistics.median(f.zizhi_us) for k, f in figures.items() if k.startswith("POST")
    )
    lifecycle_f = sum(
        statistics.median(f.floor_us) for k, f in figures.items() if k.startswith("POST")
    )
    print(
        f"lifecycle writes: median request ratio {statistics.median(writes):.2f}x; "
        f"whole lifecycle {lifecycle_z / lifecycle_f:.2f}x the floor's CPU"
    )
    print("µs CPU per request: median of the runs (min–max); ratio taken within each turn")


# --- throughput -----------------------------------------------------------------------------------

LUA = """
wrk.method = "{method}"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


SPREAD_LUA = """
local paths = {{{paths}}}
local turn = 0
request = function()
  turn = turn + 1
  return wrk.format(nil, paths[(turn % #paths) + 1])
end
"""


@dataclass(frozen=True)
class Load:
    """One ``wrk`` run against one server: requests/s, latency and the server's CPU."""

    rate: float
    p50: str
    p99: str
    bad: int
    cpu_per_request: float  # seconds of the server's CPU per request answered


def wrk(server: Server, url: str, clients: int, duration: int, script: Path) -> Load:
    before = server.cpu
    run = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if run.stderr.strip():
        raise RuntimeError(f"wrk: {run.stderr.strip()}")
    out = run.stdout
    latencies = out[out.index("Latency Distribution") :]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", latencies).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", latencies).group(1)  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    answered = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    spent = server.cpu - before
    return Load(rate, p50, p99, int(bad.group(1)) if bad else 0, spent / max(answered, 1))


def throughput(
    zizhi: Server,
    floor: Server,
    site: Prepared,
    clients: list[int],
    duration: int,
    tmp: Path,
    project: int,
    floor_project: int,
    only: list[str],
) -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): throughput skipped")
        return
    auth = f'wrk.headers["Authorization"] = "Bearer {site.committee}"'
    demand = json.dumps({"content": "楼道堆物", "resident": "高阿姨"}, ensure_ascii=False)
    scripts = {}
    for name, method, body, a in [
        ("z_write", "POST", demand, auth),
        ("z_read", "GET", "", auth),
        ("f_write", "POST", json.dumps({"note": "同意"}, ensure_ascii=False), ""),
        ("f_read", "GET", "", ""),
    ]:
        path = tmp / f"{name}.lua"
        path.write_text(LUA.format(method=method, body=body, auth=a), encoding="utf-8")
        scripts[name] = path
    # Demands going round SPREAD communities, one request to each in turn: writers that do
    # not share a chain head, against "write", where every writer takes one community's turn.
    paths = ", ".join(f'"/api/v1/communities/{c}/demands"' for c in site.spread)
    spread_auth = f'wrk.headers["Authorization"] = "Bearer {site.spread_committee}"'
    scripts["z_spread"] = tmp / "z_spread.lua"
    scripts["z_spread"].write_text(
        LUA.format(method="POST", body=demand, auth=spread_auth) + SPREAD_LUA.format(paths=paths),
        encoding="utf-8",
    )
    cases = [
        (
            "write",
            f"{zizhi.url}/api/v1/communities/{site.community}/demands",
            "z_write",
            f"{floor.url}/projects/{floor_project}/act",
            "f_write",
        ),
        (
            "spread",
            f"{zizhi.url}/api/v1/communities/{site.spread[0]}/demands",
            "z_spread",
            f"{floor.url}/projects/{floor_project}/act",
            "f_write",
        ),
        (
            "read",
            f"{zizhi.url}/api/v1/projects/{project}",
            "z_read",
            f"{floor.url}/projects/{floor_project}",
            "f_read",
        ),
        ("health", f"{zizhi.url}/healthz", "f_read", f"{floor.url}/noop", "f_read"),
    ]
    header = (
        f"{'case':<6} {'clients':>7} {'Zizhi req/s':>12} {'p50':>9} {'p99':>9} "
        f"{'floor req/s':>12} {'p50':>9} {'p99':>9} {'Z/floor':>8} "
        f"{'Z CPU/req':>10} {'floor CPU':>10} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    unknown = set(only) - {case[0] for case in cases}
    if unknown:
        raise SystemExit(f"--cases: no such case {', '.join(sorted(unknown))}")
    chosen = sorted((c for c in cases if c[0] in only), key=lambda c: only.index(c[0]))
    for case, z_url, z_script, f_url, f_script in chosen:
        for n in clients:
            z = wrk(zizhi, z_url, n, duration, scripts[z_script])
            f = wrk(floor, f_url, n, duration, scripts[f_script])
            errors = f"  ({z.bad} + {f.bad} non-2xx)" if z.bad or f.bad else ""
            print(
                f"{case:<6} {n:>7} {z.rate:>12,.0f} {z.p50:>9} {z.p99:>9} {f.rate:>12,.0f} "
                f"{f.p50:>9} {f.p99:>9} {z.rate / f.rate:>8.2f} "
                f"{z.cpu_per_request * 1e6:>8,.0f}µs {f.cpu_per_request * 1e6:>8,.0f}µs "
                f"{os.getloadavg()[0]:>5.1f}{errors}"
            )


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="a database to use instead of a fresh one")
    parser.add_argument("--reuse", action="store_true", help="accept a --url that holds data")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=100, help="projects per run")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--cases", default="write,spread,read,health", help="throughput cases, in this order"
    )
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-cpu", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="zizhi serve --workers")
    args = parser.parse_args()
    clean_up_when_terminated()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zizhi-http-")))
        if args.url:
            if holds_data(args.url) and not args.reuse:
                sys.exit(
                    f"{args.url.split('@')[-1]} already holds data; pass --reuse to write to it"
                )
            url = args.url
        elif args.db == "sqlite":
            url = f"sqlite:///{tmp / 'zizhi.db'}"
        else:
            url = stack.enter_context(pg_url())
        print(describe_environment(postgresql=url.startswith("postgresql")))
        site = prepare(url)
        z_port, f_port = free_port(), free_port()
        command = [str(BIN / "zizhi"), "serve", "--port", str(z_port), "--no-dispatcher"]
        if args.workers > 1:
            command += ["--workers", str(args.workers)]
        zizhi = stack.enter_context(
            serve(
                "zizhi",
                command,
                {"ZIZHI_DATABASE_URL": url},
                z_port,
                tmp / "zizhi.log",
                ready="/healthz",
            )
        )
        floor = stack.enter_context(
            serve(
                "floor",
                [
                    str(BIN / "python"),
                    "-m",
                    "uvicorn",
                    "bench.floor_app:app",
                    "--port",
                    str(f_port),
                ],
                {"FLOOR_DB": str(tmp / "floor.db")},
                f_port,
                tmp / "floor.log",
                ready="/noop",
            )
        )
        print(f"Zizhi on {site.url.split(':')[0]} ({args.workers} worker(s)); floor on SQLite FULL")
        driver = Driver(zizhi, floor, site, args.n)
        driver.run()  # warm-up run, not counted
        driver.figures.clear()
        if not args.no_cpu:
            for _ in range(args.runs):
                driver.run()
            print_cpu(driver.figures)
        if not args.no_throughput:
            project = driver._post(
                "/api/v1/projects",
                {
                    "community_id": site.community,
                    "workflow": "self_governance",
                    "title": "吞吐",
                    "category": "居民自治类",
                },
            )["id"]
            throughput(
                zizhi,
                floor,
                site,
                [int(c) for c in args.clients.split(",")],
                args.duration,
                tmp,
                project,
                driver.floor_projects[0],
                args.cases.split(","),
            )


if __name__ == "__main__":
    main()
