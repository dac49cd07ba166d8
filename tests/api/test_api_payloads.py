"""Hostile text — SQL, HTML, template and format injections — is stored and shown verbatim,
and does nothing."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.api.client import Api
from tests.factories import VOTE

PAYLOADS = [
    "'; DROP TABLE projects; --",
    "Robert'); DELETE FROM events WHERE ('1'='1",
    '" OR "1"="1" --',
    "<script>alert('自治')</script>",
    '<img src=x onerror="alert(1)">',
    "{{ 7*7 }} {% raw %}${7*7}",
    "%s%s%n%x %(name)s {0}",
    "../../../etc/passwd",
    "Ｆｕｌｌ　ｗｉｄｔｈ 全角 ℡ ﬁ",
    "😀 表情 \\u0000 \\n",
]
TABLES = (
    "communities",
    "projects",
    "demands",
    "expenses",
    "events",
    "ledger_entries",
    "fund_accounts",
    "chain_heads",
    "api_tokens",
)


def _short(text: str, limit: int) -> str:
    return text[:limit]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_text_in_every_field_is_kept_verbatim_and_harmless(
    api: Api, z: Zizhi, payload: str
) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    short = _short(payload, 60)
    token = api.ok(api.post("/api/v1/tokens", api.admin, {"name": short, "role": "auditor"}), 201)
    assert token["name"] == short
    place = api.ok(
        api.post(
            "/api/v1/communities",
            api.admin,
            {
                "id": community + "-x",
                "name": short,
                "street": short,
                "district": short,
                "kind": "urban",
            },
        ),
        201,
    )
    assert (place["name"], place["street"], place["district"]) == (short, short, short)

    project = api.ok(
        api.post(
            "/api/v1/projects",
            committee,
            {
                "community_id": community,
                "workflow": "self_governance",
                "title": payload,
                "menu_item": "C0101",
            },
        ),
        201,
    )
    assert (project["title"], project["category"], project["menu_item"]) == (
        payload,
        "问题焦点类",
        "C0101",
    )
    demand = api.ok(
        api.post(
            f"/api/v1/projects/{project['id']}/demands",
            committee,
            {"content": payload, "resident": short, "contact": short},
        ),
        201,
    )
    assert (demand["content"], demand["resident"], demand["contact"]) == (payload, short, short)
    pid = project["id"]
    fields: list[tuple[str, dict[str, Any]]] = [
        ("close_collection", {}),
        ("accept", {"note": payload}),
        ("submit_plan", {"budget_fen": 100_000, "plan": payload}),
        ("return_for_revision", {"reason": payload}),
        ("submit_plan", {"budget_fen": 100_000, "plan": payload}),
        ("approve", VOTE),
    ]
    for action, body in fields:
        api.ok(api.act(committee, pid, action, body))
    expense = api.ok(
        api.post(
            f"/api/v1/projects/{pid}/expenses",
            committee,
            {"amount_fen": 100, "payee": short, "invoice_no": short, "description": payload},
        ),
        201,
    )
    assert (expense["payee"], expense["invoice_no"], expense["description"]) == (
        short,
        short,
        payload,
    )
    finishing: list[tuple[str, dict[str, Any]]] = [
        ("complete_implementation", {"report": payload}),
        ("rectify", {"issues": payload}),
        ("complete_implementation", {"report": payload}),
        ("evaluate", {"score": 3, "report": payload}),
        ("close", {"notice": payload, "satisfied": 1, "unsatisfied": 0}),
    ]
    for action, body in finishing:
        api.ok(api.act(committee, pid, action, body))

    shown = api.ok(api.get(f"/api/v1/projects/{pid}", committee))
    assert shown["details"]["close"]["notice"] == payload
    assert shown["details"]["rectify"]["issues"] == payload
    history = api.ok(api.get(f"/api/v1/projects/{pid}/history", committee))
    assert {
        e["data"]["fields"].get("reason") for e in history if e["type"] == "project.transitioned"
    } >= {payload}
    exported = api.client.get(
        "/api/v1/audit/events.csv", headers=api.auth(api.admin), params={"project_id": pid}
    )
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    exported_values = [
        v for row in rows for v in json.loads(row["data"]).get("fields", {}).values()
    ]
    assert payload in exported_values
    for response in (api.get(f"/api/v1/projects/{pid}", committee), exported):
        assert "text/html" not in response.headers["content-type"]

    with z.read() as conn:  # every table is still there and still answers
        for table in TABLES:
            conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    assert engine.verify(z, CLI).ok


def test_tokens_and_passwords_are_stored_only_as_hashes(api: Api, z: Zizhi) -> None:
    made = api.ok(api.post("/api/v1/tokens", api.admin, {"name": "查库", "role": "auditor"}), 201)
    secret = made["token"]
    engine.create_user(
        z,
        CLI,
        username="hash-check-" + made["id"],
        role="auditor",
        password="一个足够长的口令-2026",
    )
    with z.read() as conn:
        everything = []
        for table in ("api_tokens", "users", "events", "idempotency_keys"):
            everything += [repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
        stored = conn.execute(
            sa.text("SELECT token_hash FROM api_tokens WHERE id = :i"), {"i": made["id"]}
        ).scalar_one()
        password = conn.execute(
            sa.text("SELECT password_hash FROM users WHERE username = :u"),
            {"u": "hash-check-" + made["id"]},
        ).scalar_one()
    dump = "\n".join(everything)
    assert secret not in dump and secret[3:] not in dump
    assert "一个足够长的口令-2026" not in dump
    assert stored == engine.hash_token(secret)
    assert password.startswith("$argon2")
