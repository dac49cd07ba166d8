"""The floor for ``bench/http.py``: FastAPI and raw ``sqlite3`` writing one transition's rows.

Nothing else: no authentication, no validation beyond FastAPI's, no idempotency, no ORM. Each
write request is one transaction at the durability Zizhi runs at (WAL, ``synchronous=FULL``)
that locks a project joined with its chain head, appends one hash-chained event, saves the
project with a version bump and moves the head — the rows an engine transition writes. Writers
queue on a process lock, as Zizhi's do, rather than spin in SQLite's busy handler.

Run: ``FLOOR_DB=/tmp/floor.db uvicorn bench.floor_app:app --port 8001`` (the benchmark starts
it itself). Routes:

* ``POST /projects`` — a new project, its first event and its chain head;
* ``POST /projects/{id}/act`` — one transition's rows;
* ``GET /projects/{id}`` — one project row as JSON;
* ``GET /noop`` — nothing at all (the cost of FastAPI and uvicorn alone).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY, community_id TEXT NOT NULL, title TEXT NOT NULL,
    state TEXT NOT NULL, version INTEGER NOT NULL, details TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_heads (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, chain TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
    project_id INTEGER, type TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT, hash TEXT NOT NULL,
    UNIQUE (chain, seq)
);
"""

LOCK = (
    "SELECT p.id, p.community_id, p.title, p.state, p.version, p.details, h.seq, h.hash "
    "FROM projects p JOIN chain_heads h ON h.chain = p.community_id WHERE p.id = ?"
)
INSERT_EVENT = (
    "INSERT INTO events (chain, seq, at, project_id, type, data, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SAVE = (
    "UPDATE projects SET state = ?, version = version + 1, details = ?, updated_at = ? WHERE id = ?"
)
MOVE_HEAD = "UPDATE chain_heads SET seq = ?, hash = ? WHERE chain = ?"

app = FastAPI()
_path = os.environ.get("FLOOR_DB", "floor.db")
_local = threading.local()
_write_lock = threading.Lock()


def _conn() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        _local.conn = conn
    return conn


with sqlite3.connect(_path) as _setup:
    _setup.executescript(SCHEMA)


def _hash(prev: str | None, record: dict[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(((prev or "") + text).encode()).hexdigest()


def _append(conn: sqlite3.Connection, chain: str, seq: int, prev: str | None, **event: Any) -> str:
    at = datetime.now(UTC).isoformat()
    data = json.dumps(event["data"], ensure_ascii=False, sort_keys=True)
    digest = _hash(prev, {"chain": chain, "seq": seq, "at": at, **event})
    conn.execute(
        INSERT_EVENT, (chain, seq, at, event["project_id"], event["type"], data, prev, digest)
    )
    return digest


def _view(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "community_id": row[1],
        "title": row[2],
        "state": row[3],
        "version": row[4],
        "details": json.loads(row[5]),
    }


@app.get("/noop")
def noop() -> dict[str, str]:
    return {}


@app.post("/projects", status_code=201)
def create(body: dict[str, Any]) -> dict[str, Any]:
    conn = _conn()
    now = datetime.now(UTC).isoformat()
    community = str(body.get("community_id", "c1"))
    with _write_lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR IGNORE INTO chain_heads (chain, seq, hash) VALUES (?, 0, NULL)",
                (community,),
            )
            seq, prev = conn.execute(
                "SELECT seq, hash FROM chain_heads WHERE chain = ?", (community,)
            ).fetchone()
            (project_id,) = conn.execute(
                "INSERT INTO projects (community_id, title, state, version, details, updated_at) "
                "VALUES (?, ?, 'open', 1, '{}', ?) RETURNING id",
                (community, str(body.get("title", "")), now),
            ).fetchone()
            digest = _append(
                conn, community, seq + 1, prev, project_id=project_id, type="created", data=body
            )
            conn.execute(MOVE_HEAD, (seq + 1, digest, community))
            row = conn.execute(LOCK, (project_id,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return _view(row)


@app.post("/projects/{project_id}/act")
def act(project_id: int, body: dict[str, Any]) -> dict[str, Any]:
    conn = _conn()
    now = datetime.now(UTC).isoformat()
    with _write_lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(LOCK, (project_id,)).fetchone()
            if row is None:
                raise HTTPException(404)
            chain, seq, prev = row[1], row[6], row[7]
            details = {**json.loads(row[5]), **body}
            digest = _append(
                conn, chain, seq + 1, prev, project_id=project_id, type="transitioned", data=body
            )
            conn.execute(SAVE, ("acted", json.dumps(details, ensure_ascii=False), now, project_id))
            conn.execute(MOVE_HEAD, (seq + 1, digest, chain))
            row = conn.execute(LOCK, (project_id,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return _view(row)


@app.get("/projects/{project_id}")
def read(project_id: int) -> dict[str, Any]:
    row = _conn().execute(LOCK, (project_id,)).fetchone()
    if row is None:
        raise HTTPException(404)
    return _view(row)
