"""Every refused request leaves the database exactly as it was: every row of every table.

No refusal is recorded anywhere (there is nothing to audit about a change that did not
happen); the answer itself is the record the caller gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from engine.store.tables import metadata
from engine.store.uow import Zizhi
from tests.api.client import Api
from tests.factories import VOTE


def _dump(z: Zizhi) -> dict[str, list[tuple[Any, ...]]]:
    with z.read() as conn:
        return {
            name: [
                tuple(r)
                for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in sorted(metadata.tables.items())
        }


@pytest.fixture
def scene(api: Api) -> dict[str, Any]:
    community = api.community()
    committee = api.token("committee", communities=[community])
    review = api.advance(
        committee, api.project(committee, community), "review", budget_fen=4_500_000
    )
    running = api.advance(
        committee, api.project(committee, community), "implementation", budget_fen=1_000_000
    )
    api.ok(
        api.post(
            f"/api/v1/projects/{running['id']}/expenses",
            committee,
            {"amount_fen": 10, "payee": "甲", "invoice_no": "taken", "description": "x"},
        ),
        201,
    )
    api.ok(
        api.post(
            "/api/v1/projects",
            committee,
            {
                "community_id": community,
                "workflow": "self_governance",
                "title": "键",
                "category": "居民自治类",
            },
            **{"Idempotency-Key": "used"},
        ),
        201,
    )
    closed_year = 2004
    api.client.post(f"/api/v1/years/{closed_year}/close", headers=api.auth(api.admin))
    return {
        "community": community,
        "committee": committee,
        "review": review,
        "running": running,
        "auditor": api.token("auditor"),
        "other": api.token("committee", communities=[api.community()]),
        "closed_year": closed_year,
    }


REFUSALS: dict[str, Callable[[Api, dict[str, Any]], Any]] = {
    "unauthenticated": lambda api, s: api.post("/api/v1/projects", "zz_wrong", {}),
    "forbidden": lambda api, s: api.act(s["auditor"], s["review"]["id"], "approve", VOTE),
    "not_found": lambda api, s: api.act(s["other"], s["review"]["id"], "approve", VOTE),
    "validation_error": lambda api, s: api.post(
        f"/api/v1/projects/{s['running']['id']}/expenses",
        s["committee"],
        {"amount_fen": "100", "payee": "甲", "invoice_no": "v", "description": "x"},
    ),
    "action_not_allowed": lambda api, s: api.act(
        s["committee"], s["review"]["id"], "complete_implementation", {"report": "x"}
    ),
    "guard_failed": lambda api, s: api.act(
        s["committee"], s["review"]["id"], "approve", {**VOTE, "votes_for": 3, "votes_against": 4}
    ),
    "fund_cap_exceeded": lambda api, s: api.act(s["committee"], s["review"]["id"], "approve", VOTE),
    "fund_cap_exceeded (expense)": lambda api, s: api.post(
        f"/api/v1/projects/{s['running']['id']}/expenses",
        s["committee"],
        {"amount_fen": 999_999_999, "payee": "甲", "invoice_no": "big", "description": "x"},
    ),
    "fund_cap_exceeded (allocation)": lambda api, s: api.put(
        f"/api/v1/communities/{s['community']}/funds/self_governance/{s['review']['year']}",
        api.admin,
        {"allocated_fen": 1},
    ),
    "already_exists": lambda api, s: api.post(
        f"/api/v1/projects/{s['running']['id']}/expenses",
        s["committee"],
        {"amount_fen": 1, "payee": "甲", "invoice_no": "taken", "description": "x"},
    ),
    "version_conflict": lambda api, s: api.act(
        s["committee"], s["review"]["id"], "reject", {"reason": "x"}, **{"If-Match": '"1"'}
    ),
    "idempotency_conflict": lambda api, s: api.post(
        "/api/v1/projects",
        s["committee"],
        {
            "community_id": s["community"],
            "workflow": "self_governance",
            "title": "别的",
            "category": "居民自治类",
        },
        **{"Idempotency-Key": "used"},
    ),
    "year_closed": lambda api, s: api.put(
        f"/api/v1/communities/{s['community']}/funds/self_governance/{s['closed_year']}",
        api.admin,
        {"allocated_fen": 1},
    ),
    "payload_too_large": lambda api, s: api.post(
        "/api/v1/projects", s["committee"], {"title": "长" * 100_000}
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_request_changes_no_row_of_any_table(
    api: Api, z: Zizhi, scene: dict[str, Any], case: str
) -> None:
    before = _dump(z)
    response = REFUSALS[case](api, scene)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] == case.split(" ")[0]
    assert _dump(z) == before
