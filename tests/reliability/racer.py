"""One racing client process: ``python -m tests.reliability.racer``.

The parent writes a plan (one JSON line) on stdin; the racer gets ready (opens its own
engine, or its HTTP client), prints ``ready``, waits for a ``go`` line — the barrier that
starts every racer together — runs its operations in order and prints one JSON line with
what each operation got: ``{"id", "ok": true, "answer"}``, ``{"id", "ok": false, "code"}``
for a refusal, or ``code: "unexpected"`` with the error for anything else. An operation
with a ``key`` is sent with that Idempotency-Key.

Two drivers. ``engine``: the process opens its own ``Database`` and ``Zizhi`` and calls the
use cases directly, so several processes share one SQLite file and only SQLite's locking
(``BEGIN IMMEDIATE`` + busy timeout) stands between them. ``http``: the process calls the
API of several ``zizhi serve`` processes that share one database, each operation on the next
server in turn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from engine.model import Role

Answer = dict[str, Any]


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def principal_of(spec: str) -> Any:
    """``admin``, ``committee:<community>`` or ``street:<street>`` as an engine principal."""
    from engine.model import Principal

    kind, _, scope = spec.partition(":")
    if kind == "admin":
        return Principal(id="token:racer-admin", name="管理员", role=Role.admin)
    if kind == "committee":
        return Principal(
            id=f"token:racer-{spec}",
            name="居委会",
            role=Role.committee,
            communities=frozenset({scope}),
        )
    if kind == "street":
        return Principal(
            id=f"token:racer-{spec}", name="街道", role=Role.street, streets=frozenset({scope})
        )
    raise ValueError(f"unknown principal {spec!r}")


def engine_driver(plan: dict[str, Any]) -> Callable[[dict[str, Any]], Answer]:
    import engine
    from engine.errors import ZizhiError
    from engine.model import IdempotencyKey
    from engine.store.db import Database
    from engine.store.uow import Zizhi
    from workflows import load_registry

    z = Zizhi(Database(plan["url"], pool_size=2), load_registry())
    principals: dict[str, Any] = {}

    def run(op: dict[str, Any]) -> Answer:
        who = principals.setdefault(op["as"], principal_of(op["as"]))
        key = None
        if "key" in op:  # what the API would make of the header: who sent what
            request = {k: v for k, v in op.items() if k != "id"}
            digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
            key = IdempotencyKey(who.id, op["key"], digest)
        try:
            if op["kind"] == "fire":
                done: Any = engine.fire(
                    z, who, op["project"], op["action"], op["data"], idempotency=key
                )
            elif op["kind"] == "expense":
                done = engine.record_expense(z, who, op["project"], op["data"], idempotency=key)
            elif op["kind"] == "allocate":
                done = engine.set_allocation(
                    z,
                    who,
                    op["community"],
                    op["fund"],
                    op["year"],
                    op["allocated_fen"],
                    idempotency=key,
                )
            elif op["kind"] == "close_year":
                done = engine.close_year(z, who, op["year"], idempotency=key)
            else:
                raise ValueError(f"unknown operation {op['kind']!r}")
        except ZizhiError as exc:
            return {"ok": False, "code": exc.code}
        return {"ok": True, "answer": dataclasses.asdict(done)}

    return run


def http_driver(plan: dict[str, Any]) -> Callable[[dict[str, Any]], Answer]:
    import httpx2 as httpx

    bases: list[str] = plan["bases"]
    tokens: dict[str, str] = plan["tokens"]
    client = httpx.Client(timeout=120)  # a safety net only: no answer should take long
    turn = iter(range(sys.maxsize))

    def run(op: dict[str, Any]) -> Answer:
        base = bases[next(turn) % len(bases)]
        if op["kind"] == "fire":
            method, path = "POST", f"/api/v1/projects/{op['project']}/actions/{op['action']}"
            body = op["data"]
        elif op["kind"] == "expense":
            method, path, body = "POST", f"/api/v1/projects/{op['project']}/expenses", op["data"]
        elif op["kind"] == "allocate":
            method = "PUT"
            path = f"/api/v1/communities/{op['community']}/funds/{op['fund']}/{op['year']}"
            body = {"allocated_fen": op["allocated_fen"]}
        elif op["kind"] == "close_year":
            method, path, body = "POST", f"/api/v1/years/{op['year']}/close", {}
        else:
            raise ValueError(f"unknown operation {op['kind']!r}")
        headers = {"Authorization": f"Bearer {tokens[op['as']]}"}
        if "key" in op:
            headers["Idempotency-Key"] = op["key"]
        response = client.request(method, base + path, json=body, headers=headers)
        if 200 <= response.status_code < 300:
            return {"ok": True, "answer": response.json()}
        if response.status_code < 500 and response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            return {"ok": False, "code": response.json()["code"]}
        return {
            "ok": False,
            "code": "unexpected",
            "error": f"HTTP {response.status_code}: {response.text[:500]}",
        }

    return run


def main() -> None:
    plan = json.loads(sys.stdin.readline())
    run = engine_driver(plan) if plan["driver"] == "engine" else http_driver(plan)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("racer: no go signal")
    results = []
    for op in plan["ops"]:
        try:
            got = run(op)
        except Exception as exc:  # what the parent must see, not a dead racer
            got = {"ok": False, "code": "unexpected", "error": f"{type(exc).__name__}: {exc}"}
        results.append({"id": op["id"], **got})
    print(json.dumps(results, default=_json_default, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
