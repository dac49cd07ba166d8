"""Every refusal answers with its stable code, a message a person understands, and changes
nothing; no bad input ever gets a 500."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine.store.uow import Zizhi
from tests.api.client import Api
from tests.api.conftest import MAX_BODY
from tests.factories import VOTE

PROBLEM = "application/problem+json"


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:zizhi:problem:{code}"
    assert body["title"] and body["detail"]
    return body


def _db_state(z: Zizhi) -> tuple[int, ...]:
    with z.read() as conn:
        return tuple(
            conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in (
                "events",
                "ledger_entries",
                "projects",
                "demands",
                "expenses",
                "communities",
                "api_tokens",
                "idempotency_keys",
            )
        )


@pytest.fixture
def setup(api: Api) -> dict[str, Any]:
    community = api.community()
    committee = api.token("committee", communities=[community])
    review = api.advance(
        committee, api.project(committee, community), "review", budget_fen=1_000_000
    )
    implementation = api.advance(
        committee, api.project(committee, community), "implementation", budget_fen=1_000_000
    )
    return {
        "community": community,
        "committee": committee,
        "review": review,
        "implementation": implementation,
    }


def test_no_token_or_a_bad_token_is_unauthenticated(api: Api) -> None:
    for token in (None, "zz_not-a-real-token", "Basic abc"):
        body = _refused(api.get("/api/v1/projects", token), 401, "unauthenticated")
        assert "令牌" in body["detail"]
    assert api.get("/api/v1/projects", None).headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_token_stops_working(api: Api) -> None:
    community = api.community()
    created = api.ok(
        api.post(
            "/api/v1/tokens",
            api.admin,
            {"name": "临时", "role": "committee", "communities": [community]},
        ),
        201,
    )
    assert api.get("/api/v1/me", created["token"]).status_code == 200
    api.ok(api.client.delete(f"/api/v1/tokens/{created['id']}", headers=api.auth(api.admin)))
    _refused(api.get("/api/v1/me", created["token"]), 401, "unauthenticated")


def test_the_wrong_role_is_forbidden(api: Api, setup: dict[str, Any]) -> None:
    auditor = api.token("auditor")
    _refused(api.act(auditor, setup["review"]["id"], "approve", VOTE), 403, "forbidden")
    _refused(
        api.post(
            "/api/v1/communities",
            setup["committee"],
            {"id": "x", "name": "x", "street": "x", "district": "x", "kind": "urban"},
        ),
        403,
        "forbidden",
    )
    _refused(
        api.post("/api/v1/tokens", setup["committee"], {"name": "x", "role": "admin"}),
        403,
        "forbidden",
    )
    _refused(api.get("/api/v1/audit/verify", setup["committee"]), 403, "forbidden")


def test_unknown_things_are_not_found(api: Api, setup: dict[str, Any]) -> None:
    committee = setup["committee"]
    _refused(api.get("/api/v1/projects/999999999", committee), 404, "not_found")
    _refused(api.get("/api/v1/communities/nowhere/funds", committee), 404, "not_found")
    _refused(api.get("/api/v1/no/such/path", committee), 404, "not_found")
    _refused(
        api.client.delete("/api/v1/projects/1", headers=api.auth(committee)),
        405,
        "method_not_allowed",
    )


def test_an_action_from_the_wrong_state_is_not_allowed(api: Api, setup: dict[str, Any]) -> None:
    body = _refused(
        api.act(
            setup["committee"],
            setup["review"]["id"],
            "close",
            {"notice": "x", "satisfied": 1, "unsatisfied": 0},
        ),
        409,
        "action_not_allowed",
    )
    assert "评议" in body["detail"]
    _refused(
        api.post(
            f"/api/v1/projects/{setup['review']['id']}/expenses",
            setup["committee"],
            {"amount_fen": 1, "payee": "甲", "invoice_no": "1", "description": "x"},
        ),
        409,
        "action_not_allowed",
    )


def test_a_failed_condition_is_guard_failed(api: Api, setup: dict[str, Any]) -> None:
    no_quorum = {**VOTE, "attendees": 5, "votes_for": 4, "votes_against": 1}
    body = _refused(
        api.act(setup["committee"], setup["review"]["id"], "approve", no_quorum),
        409,
        "guard_failed",
    )
    assert "法定人数" in body["detail"]
    fresh = api.project(setup["committee"], setup["community"])
    _refused(api.act(setup["committee"], fresh["id"], "close_collection"), 409, "guard_failed")


def test_too_much_money_is_fund_cap_exceeded(api: Api, setup: dict[str, Any]) -> None:
    _refused(
        api.post(
            f"/api/v1/projects/{setup['implementation']['id']}/expenses",
            setup["committee"],
            {"amount_fen": 1_000_001, "payee": "甲", "invoice_no": "big", "description": "x"},
        ),
        409,
        "fund_cap_exceeded",
    )
    _refused(
        api.put(
            f"/api/v1/communities/{setup['community']}/funds/self_governance/"
            f"{setup['review']['year']}",
            api.admin,
            {"allocated_fen": 999_999},
        ),
        409,
        "fund_cap_exceeded",
    )


def test_a_duplicate_is_already_exists(api: Api, setup: dict[str, Any]) -> None:
    community = setup["community"]
    _refused(
        api.post(
            "/api/v1/communities",
            api.admin,
            {"id": community, "name": "重复", "street": "x", "district": "x", "kind": "urban"},
        ),
        409,
        "already_exists",
    )
    expense = {"amount_fen": 1, "payee": "甲", "invoice_no": "dup", "description": "x"}
    path = f"/api/v1/projects/{setup['implementation']['id']}/expenses"
    api.ok(api.post(path, setup["committee"], expense), 201)
    _refused(
        api.post(path, setup["committee"], {**expense, "amount_fen": 2}), 409, "already_exists"
    )


def test_a_stale_if_match_is_a_version_conflict_and_changes_nothing(
    api: Api, z: Zizhi, setup: dict[str, Any]
) -> None:
    project = setup["review"]
    before = _db_state(z)
    body = _refused(
        api.act(
            setup["committee"],
            project["id"],
            "approve",
            VOTE,
            **{"If-Match": f'"{project["version"] - 1}"'},
        ),
        412,
        "version_conflict",
    )
    assert "刷新" in body["detail"]
    assert _db_state(z) == before


def test_idempotent_replay_and_conflict_over_http(
    api: Api, z: Zizhi, setup: dict[str, Any]
) -> None:
    committee, community = setup["committee"], setup["community"]
    body = {
        "community_id": community,
        "workflow": "self_governance",
        "title": "幂等",
        "category": "居民自治类",
    }
    first = api.post("/api/v1/projects", committee, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = _db_state(z)
    # the same request, spelled differently, is the same request
    again = api.client.post(
        "/api/v1/projects",
        headers=api.auth(
            committee, **{"Idempotency-Key": "k-1", "Content-Type": "application/json"}
        ),
        content='{"title": "幂等", "category": "居民自治类", "workflow": "self_governance",'
        f' "community_id": "{community}"}}',
    )
    assert (again.status_code, again.json()) == (201, first.json())
    assert _db_state(z) == before
    _refused(
        api.post(
            "/api/v1/projects", committee, {**body, "title": "另一个"}, **{"Idempotency-Key": "k-1"}
        ),
        422,
        "idempotency_conflict",
    )
    _refused(
        api.post("/api/v1/projects", committee, body, **{"Idempotency-Key": "has space"}),
        422,
        "validation_error",
    )


def test_a_token_replayed_by_its_idempotency_key_never_shows_the_secret_again(api: Api) -> None:
    body = {"name": "接口对接", "role": "auditor"}
    first = api.ok(api.post("/api/v1/tokens", api.admin, body, **{"Idempotency-Key": "t"}), 201)
    again = api.ok(api.post("/api/v1/tokens", api.admin, body, **{"Idempotency-Key": "t"}), 201)
    assert first["token"].startswith("zz_") and again["token"] is None
    assert {k: v for k, v in first.items() if k != "token"} == {
        k: v for k, v in again.items() if k != "token"
    }


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("amount as a string", {"amount_fen": "100"}, "amount_fen"),
    ("amount as a fraction", {"amount_fen": 100.5}, "amount_fen"),
    ("amount as a float integer", {"amount_fen": 100.0}, "amount_fen"),
    ("amount as a boolean", {"amount_fen": True}, "amount_fen"),
    ("negative amount", {"amount_fen": -1}, "amount_fen"),
    ("zero amount", {"amount_fen": 0}, "amount_fen"),
    ("absurd amount", {"amount_fen": 10**20}, "amount_fen"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("missing field", {"payee": None}, "payee"),
    ("too long", {"description": "长" * 2001}, "description"),
    ("empty text", {"payee": ""}, "payee"),
]


@pytest.mark.parametrize(
    ("case", "change", "field"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES]
)
def test_bad_expense_input_is_refused_field_by_field_and_changes_nothing(
    api: Api, z: Zizhi, setup: dict[str, Any], case: str, change: dict[str, Any], field: str
) -> None:
    good = {"amount_fen": 100, "payee": "甲", "invoice_no": f"bad-{case}", "description": "x"}
    body = {k: v for k, v in {**good, **change}.items() if v is not None}
    before = _db_state(z)
    refused = _refused(
        api.post(
            f"/api/v1/projects/{setup['implementation']['id']}/expenses", setup["committee"], body
        ),
        422,
        "validation_error",
    )
    assert field in refused["errors"]
    assert _db_state(z) == before


BAD_ACTIONS: list[tuple[str, str, Any, str]] = [
    ("budget as a string", "submit_plan", {"budget_fen": "100", "plan": "x"}, "budget_fen"),
    ("budget as a fraction", "submit_plan", {"budget_fen": 1.5, "plan": "x"}, "budget_fen"),
    ("vote count as a string", "approve", {**VOTE, "attendees": "7"}, "attendees"),
    ("unknown field", "approve", {**VOTE, "extra": 1}, "extra"),
    ("missing field", "approve", {k: v for k, v in VOTE.items() if k != "votes_for"}, "votes_for"),
    ("body is a list", "approve", [1, 2], "body"),
    ("unknown action", "launch_rocket", {}, "action"),
]


@pytest.mark.parametrize(
    ("case", "action", "body", "field"), BAD_ACTIONS, ids=[case for case, _, _, _ in BAD_ACTIONS]
)
def test_bad_action_input_is_refused_and_changes_nothing(
    api: Api, z: Zizhi, setup: dict[str, Any], case: str, action: str, body: Any, field: str
) -> None:
    project = setup["review"]
    if action == "submit_plan":
        project = api.ok(
            api.act(setup["committee"], project["id"], "return_for_revision", {"reason": "重做"})
        )
    before = _db_state(z)
    refused = _refused(
        api.act(setup["committee"], project["id"], action, body), 422, "validation_error"
    )
    if field != "action":
        assert field in refused["errors"], refused
    else:
        assert "未知操作" in refused["detail"]
    assert _db_state(z) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/abc",
        "/api/v1/projects/-1",
        "/api/v1/projects/0",
        "/api/v1/projects/99999999999999999999999",
        "/api/v1/communities/BAD%20ID/funds",
        "/api/v1/communities/lihe/funds/slush_fund/2026/statement",
        "/api/v1/communities/lihe/funds/self_governance/1800/statement",
        "/api/v1/projects?limit=0",
        "/api/v1/projects?limit=100000",
        "/api/v1/projects?cursor=%%%",
        "/api/v1/projects?year=abc",
        "/api/v1/communities/lihe/funds?as_of=yesterday",
        "/api/v1/communities/lihe/funds?as_of=2026-01-01T00:00:00",
        "/api/v1/audit/events?since=2026-01-01",
    ],
)
def test_malformed_ids_and_queries_are_validation_errors(api: Api, path: str) -> None:
    _refused(api.get(path, api.admin), 422, "validation_error")


def test_malformed_json_and_wrong_content_are_validation_errors(
    api: Api, setup: dict[str, Any]
) -> None:
    headers = api.auth(setup["committee"], **{"Content-Type": "application/json"})
    for content in ("{not json", '{"amount_fen": NaN}', "[]", '"text"'):
        response = api.client.post(
            f"/api/v1/projects/{setup['implementation']['id']}/expenses",
            headers=headers,
            content=content,
        )
        _refused(response, 422, "validation_error")
    action = api.client.post(
        f"/api/v1/projects/{setup['review']['id']}/actions/approve",
        headers=headers,
        content='{"council_size": Infinity}',
    )
    _refused(action, 422, "validation_error")


def test_a_body_over_the_size_limit_is_refused(api: Api, setup: dict[str, Any]) -> None:
    response = api.post(
        f"/api/v1/projects/{setup['implementation']['id']}/expenses",
        setup["committee"],
        {"description": "长" * MAX_BODY},
    )
    _refused(response, 413, "payload_too_large")


def test_problem_messages_are_in_chinese(api: Api, setup: dict[str, Any]) -> None:
    body = _refused(
        api.post(
            f"/api/v1/projects/{setup['implementation']['id']}/expenses",
            setup["committee"],
            {"amount_fen": "100", "payee": "甲", "invoice_no": "1", "description": "x"},
        ),
        422,
        "validation_error",
    )
    assert body["errors"]["amount_fen"] == "必须是整数，不能是小数或字符串"
    assert body["title"] == "输入有误"


def test_a_streamed_body_over_the_size_limit_is_refused(api: Api, setup: dict[str, Any]) -> None:
    def chunks() -> Any:
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    response = api.client.post(
        f"/api/v1/projects/{setup['review']['id']}/actions/approve",
        content=chunks(),
        headers=api.auth(setup["committee"], **{"Content-Type": "application/json"}),
    )
    _refused(response, 413, "payload_too_large")


def test_a_json_body_sent_without_its_content_type_is_explained(api: Api) -> None:
    response = api.client.post(
        "/api/v1/communities", headers=api.auth(api.admin), content=b'{"id": "x"}'
    )
    body = _refused(response, 422, "validation_error")
    assert "Content-Type: application/json" in body["errors"]["body"]


def test_closing_a_year_is_for_admins_and_happens_once(api: Api) -> None:
    auditor = api.token("auditor")
    _refused(api.post("/api/v1/years/2001/close", auditor), 403, "forbidden")
    closed = api.ok(api.post("/api/v1/years/2001/close", api.admin))
    assert (closed["year"], closed["closed"], closed["projects_released"]) == (2001, True, 0)
    assert api.ok(api.get("/api/v1/years/2001", auditor))["closed"] is True
    _refused(api.post("/api/v1/years/2001/close", api.admin), 409, "already_exists")
    _refused(api.post("/api/v1/years/1999/close", api.admin), 422, "validation_error")


def test_allocating_in_a_closed_year_is_year_closed(api: Api) -> None:
    community = api.community()
    api.ok(api.post("/api/v1/years/2003/close", api.admin))
    _refused(
        api.put(
            f"/api/v1/communities/{community}/funds/self_governance/2003",
            api.admin,
            {"allocated_fen": 1},
        ),
        409,
        "year_closed",
    )


def test_an_unknown_action_names_the_field_and_the_actions_there_are(
    api: Api, setup: dict[str, Any]
) -> None:
    body = _refused(
        api.act(setup["committee"], setup["review"]["id"], "launch_rocket", {}),
        422,
        "validation_error",
    )
    assert "approve" in body["errors"]["action"]


def test_an_out_of_range_as_of_is_reported_as_as_of(api: Api, setup: dict[str, Any]) -> None:
    body = _refused(
        api.get(
            f"/api/v1/communities/{setup['community']}/funds",
            api.admin,
            as_of="1990-01-01T00:00:00+08:00",
        ),
        422,
        "validation_error",
    )
    assert list(body["errors"]) == ["as_of"]
