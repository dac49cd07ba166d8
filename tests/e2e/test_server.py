"""The real server under concurrent clients: requests race over HTTP from real threads."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import httpx2 as httpx

from engine.store.uow import Zizhi
from tests.concurrency import race
from tests.e2e.server import serve
from tests.factories import PATHS, VOTE


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return httpx.request(
            method,
            self.base + path,
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {self.token}", **headers},
        )

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, response.text
        return response.json()


def _to_review(committee: Client, community: str) -> dict[str, Any]:
    project = committee.ok(
        "POST",
        "/api/v1/projects",
        {
            "community_id": community,
            "workflow": "self_governance",
            "title": "并发评议",
            "category": "居民自治类",
        },
        201,
    )
    committee.ok(
        "POST",
        f"/api/v1/projects/{project['id']}/demands",
        {"content": "需求", "resident": "居民"},
        201,
    )
    for _, action, data in PATHS["self_governance"][:3]:
        body = {**data, "budget_fen": 1_000_000} if action == "submit_plan" else data
        project = committee.ok("POST", f"/api/v1/projects/{project['id']}/actions/{action}", body)
    return dict(project)


def test_eight_clients_racing_to_approve_over_http_let_exactly_five_win(fresh_z: Zizhi) -> None:
    url = fresh_z.db.url.render_as_string(hide_password=False)
    with serve(url) as (base, printed):
        admin = Client(base, printed[-1])
        admin.ok(
            "POST",
            "/api/v1/communities",
            {
                "id": "lihe",
                "name": "里河社区",
                "street": "金阊街道",
                "district": "姑苏区",
                "kind": "urban",
            },
            201,
        )
        token = admin.ok(
            "POST",
            "/api/v1/tokens",
            {"name": "里河居委会", "role": "committee", "communities": ["lihe"]},
            201,
        )["token"]
        committee = Client(base, token)
        review = [_to_review(committee, "lihe") for _ in range(8)]
        admin.ok(
            "PUT",
            f"/api/v1/communities/lihe/funds/self_governance/{review[0]['year']}",
            {"allocated_fen": 5_000_000},
        )
        answers = race(
            [
                partial(committee.call, "POST", f"/api/v1/projects/{p['id']}/actions/approve", VOTE)
                for p in review
            ]
        )
        codes = Counter(
            r.status_code if r.status_code == 200 else r.json()["code"] for r in answers
        )
        assert codes == {200: 5, "fund_cap_exceeded": 3}
        funds = committee.ok("GET", "/api/v1/communities/lihe/funds")
        assert (funds[0]["reserved_fen"], funds[0]["available_fen"]) == (5_000_000, 0)

        duplicates = race(
            [
                lambda: committee.call(
                    "POST",
                    "/api/v1/projects",
                    {
                        "community_id": "lihe",
                        "workflow": "self_governance",
                        "title": "重复提交",
                        "category": "居民自治类",
                    },
                    **{"Idempotency-Key": "same-click"},
                )
                for _ in range(6)
            ]
        )
        assert {r.status_code for r in duplicates} == {201}
        assert len({r.json()["id"] for r in duplicates}) == 1
        assert admin.ok("GET", "/api/v1/audit/verify")["ok"] is True
