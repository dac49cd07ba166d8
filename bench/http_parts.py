"""Where a write's server CPU goes, Zizhi against the floor app: the HTTP around it, and the
transaction itself.

``bench/http.py`` measures each server's CPU per request through real sockets, and the ratio
it finds moves by a tenth from run to run and from machine to machine. This one takes the
sockets and the second process away to say *which part* of a Zizhi write costs more than the
floor's: both apps' ASGI callables run here, on one event loop, with their lifespans (so
Zizhi's worker threads and its one writers' thread are as served), each on a fresh SQLite
file of its own at the same durability (WAL, ``synchronous=FULL`` unless told otherwise).

Kinds of request, each a batch of ``--n``, taking turns, ``--runs`` times; user and system
CPU per request of this whole process (``getrusage``: every thread), median of the runs:

* **the whole write** — Zizhi: a demand on a project (``POST /api/v1/projects/{id}/demands``
  with a bearer token and an ``Idempotency-Key``), a write of every lifecycle
  ``bench/http.py`` drives, and one that can be repeated on the same project; the floor:
  ``POST /projects/{id}/act`` (one transition's rows);
* **its transaction alone** — the same work called directly, without HTTP:
  ``engine.add_to_project`` with the same principal and a key; the floor's ``act``;
* **the HTTP around it** — the difference of the two;
* a read of a project (``GET /api/v1/projects/{id}`` / the floor's one-row read), and
  ``GET /api/v1/me`` against the floor's ``/noop`` (no database at all);
* and, counted once, the **WAL frames** (pages) each write's transaction appends.

Run from the repository root:

    .venv/bin/python bench/http_parts.py [--runs 5] [--n 1500] [--synchronous FULL|OFF]

Both databases are fresh files in a temporary folder, removed afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/http_parts.py``, this file's folder would come first on the path, and
# bench/http.py would stand in for the standard library's ``http``: take the folder off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import engine  # noqa: E402
import workflows  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.common import BIG_ALLOCATION_FEN, clean_up_when_terminated, describe_environment  # noqa: E402
from engine import CLI, Database, IdempotencyKey, Zizhi  # noqa: E402
from engine.model import Fund, fiscal_year, utc_now  # noqa: E402

Asgi = Callable[..., Awaitable[None]]
WAL_HEADER, FRAME_HEADER = 32, 24
SAMPLE_WRITES = 40  # writes counted for WAL frames: under SQLite's 1,000-page checkpoint


async def call(
    app: Asgi, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> Any:
    """One request to an ASGI app, as uvicorn would pass it; answers the JSON it sent back
    (any status from 300 up is an error: the bench measures only answered requests)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *((k.encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    if answer.get("status", 500) >= 300:
        raise RuntimeError(f"{method} {path}: {answer.get('status')} {answer['body'][:300]!r}")
    return json.loads(answer["body"])


@contextlib.asynccontextmanager
async def lifespan(app: Asgi) -> AsyncIterator[None]:
    """Run the app's lifespan around the block, as a server does."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task


@dataclass
class Figures:
    user: list[float] = field(default_factory=list)
    system: list[float] = field(default_factory=list)

    def add(self, user: float, system: float) -> None:
        self.user.append(user)
        self.system.append(system)

    @property
    def total(self) -> list[float]:
        return [u + s for u, s in zip(self.user, self.system, strict=True)]


async def batch(request: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """User and system CPU of this process per request, µs, over ``n`` requests."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        await request()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (
        (after.ru_utime - before.ru_utime) / n * 1e6,
        (after.ru_stime - before.ru_stime) / n * 1e6,
    )


def wal_frames(path: Path) -> int:
    size = path.stat().st_size if path.exists() else 0
    return 0 if size <= WAL_HEADER else (size - WAL_HEADER) // (FRAME_HEADER + 4096)


async def frames_per_write(database: Path, write: Callable[[], Awaitable[object]]) -> float | None:
    """WAL frames one write appends: checkpoint the WAL empty, write, count; None if the
    checkpoint could not empty it (a reader in the way)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    wal = database.with_name(database.name + "-wal")
    if busy or wal_frames(wal):
        return None
    for _ in range(SAMPLE_WRITES):
        await write()
    return wal_frames(wal) / SAMPLE_WRITES


def floor_module(folder: Path, synchronous: str) -> ModuleType:
    """bench/floor_app.py on a fresh file in ``folder``, its connections at ``synchronous``."""
    os.environ["FLOOR_DB"] = str(folder / "floor.db")
    floor = importlib.import_module("bench.floor_app")
    opened = floor._conn

    def conn() -> sqlite3.Connection:
        connection: sqlite3.Connection = opened()
        connection.execute(f"PRAGMA synchronous={synchronous}")
        return connection

    floor._conn = conn  # type: ignore[attr-defined]
    return floor


async def measure(folder: Path, args: argparse.Namespace) -> None:
    floor = floor_module(folder, args.synchronous)
    database = folder / "zizhi.db"
    z = Zizhi(
        Database(f"sqlite:///{database}", sqlite_synchronous=args.synchronous),
        workflows.load_registry(),
    )
    z.db.migrate()
    engine.create_community(
        z, CLI, id="bench", name="基准社区", street="金阊街道", district="姑苏区", kind="urban"
    )
    engine.set_allocation(
        z, CLI, "bench", Fund.self_governance.value, fiscal_year(utc_now()), BIG_ALLOCATION_FEN
    )
    token = engine.create_token(
        z, CLI, name="基准居委会", role="committee", communities=["bench"]
    ).token
    assert token is not None
    principal = engine.authenticate_token(z, token)
    app = create_app(z, Settings())
    bearer = {"authorization": f"Bearer {token}"}
    json_body = {"content-type": "application/json"}
    demand = {"content": "楼道堆物", "resident": "高阿姨"}
    demand_json = json.dumps(demand, ensure_ascii=False).encode()

    async with lifespan(app), lifespan(floor.app):
        project = (
            await call(
                app,
                "POST",
                "/api/v1/projects",
                {**bearer, **json_body, "idempotency-key": uuid.uuid4().hex},
                json.dumps(
                    {
                        "community_id": "bench",
                        "workflow": "self_governance",
                        "title": "楼道文化营造",
                        "category": "居民自治类",
                    },
                    ensure_ascii=False,
                ).encode(),
            )
        )["id"]
        floor_project = (
            await call(floor.app, "POST", "/projects", json_body, b'{"community_id": "f"}')
        )["id"]

        async def zizhi_write() -> object:
            key = {"idempotency-key": uuid.uuid4().hex}
            path = f"/api/v1/projects/{project}/demands"
            return await call(app, "POST", path, {**bearer, **json_body, **key}, demand_json)

        async def zizhi_transaction() -> object:
            key = IdempotencyKey(principal.id, uuid.uuid4().hex, "bench")
            return engine.add_to_project(z, principal, project, demand, idempotency=key)

        async def floor_write() -> object:
            body = b'{"note": "x", "score": 1}'
            return await call(floor.app, "POST", f"/projects/{floor_project}/act", json_body, body)

        async def floor_transaction() -> object:
            return floor.act(floor_project, {"note": "x", "score": 1})

        kinds: dict[str, Callable[[], Awaitable[object]]] = {
            "Zizhi: POST a demand": zizhi_write,
            "floor: POST act": floor_write,
            "Zizhi: its transaction alone": zizhi_transaction,
            "floor: its transaction alone": floor_transaction,
            "Zizhi: GET a project": lambda: call(app, "GET", f"/api/v1/projects/{project}", bearer),
            "floor: GET a row": lambda: call(floor.app, "GET", f"/projects/{floor_project}", {}),
            "Zizhi: GET /api/v1/me": lambda: call(app, "GET", "/api/v1/me", bearer),
            "floor: GET /noop": lambda: call(floor.app, "GET", "/noop", {}),
        }
        frames = (
            await frames_per_write(database, zizhi_write),
            await frames_per_write(Path(os.environ["FLOOR_DB"]), floor_write),
        )
        for request in kinds.values():  # warm-up
            for _ in range(min(args.n, 200)):
                await request()
        figures = {kind: Figures() for kind in kinds}
        for run in range(args.runs):
            for kind, request in kinds.items():
                figures[kind].add(*await batch(request, args.n))
            print(f"  run {run + 1}/{args.runs} done, load {os.getloadavg()[0]:.1f}", flush=True)
    z.db.dispose()
    report(figures, frames, args)


def report(
    figures: dict[str, Figures], frames: tuple[float | None, float | None], args: argparse.Namespace
) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(
        f"\nµs of CPU per request, this process, median of {args.runs} runs of {args.n} "
        f"(min–max of the total); SQLite synchronous={args.synchronous}"
    )
    print(f"{'':34} {'user':>6} {'system':>7} {'total':>7}   range")
    for kind, f in figures.items():
        total = f.total
        print(
            f"{kind:34} {med(f.user):6.0f} {med(f.system):7.0f} {med(total):7.0f}"
            f"   {min(total):,.0f}–{max(total):,.0f}"
        )
    # Per run: the request less its transaction, for each side.
    parts = {}
    for side, write, alone in (
        ("Zizhi", "Zizhi: POST a demand", "Zizhi: its transaction alone"),
        ("floor", "floor: POST act", "floor: its transaction alone"),
    ):
        whole, transaction = figures[write].total, figures[alone].total
        parts[side] = (
            med(whole),
            med(transaction),
            med([w - t for w, t in zip(whole, transaction, strict=True)]),
        )
    (zw, zt, zh), (fw, ft, fh) = parts["Zizhi"], parts["floor"]
    print(
        f"{'the HTTP around the transaction':34} Zizhi {zh:,.0f}, floor {fh:,.0f}: {zh / fh:.2f}×"
    )
    print(f"{'the transaction':34} Zizhi {zt:,.0f}, floor {ft:,.0f}: {zt / ft:.2f}×")
    print(f"{'the whole write':34} Zizhi {zw:,.0f}, floor {fw:,.0f}: {zw / fw:.2f}×")
    z_frames, f_frames = frames
    shown = [f"{x:.1f}" if x is not None else "unknown (a reader held the WAL)" for x in frames]
    print(f"{'WAL frames (pages) per write':34} Zizhi {shown[0]}, floor {shown[1]}")
    if z_frames and f_frames:
        print(f"{'':34} {z_frames / f_frames:.1f}× the floor's pages")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=1500, help="requests per batch")
    parser.add_argument("--synchronous", choices=["FULL", "OFF"], default="FULL")
    args = parser.parse_args()
    clean_up_when_terminated()
    print(describe_environment(postgresql=False))
    with tempfile.TemporaryDirectory(prefix="zizhi-bench-parts-") as folder:
        asyncio.run(measure(Path(folder), args))


if __name__ == "__main__":
    main()
