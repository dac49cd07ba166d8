"""Years over HTTP (closing only after the year ended, reopening, what a close released) and
the policy floor of allocations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from engine.model import AllocationPolicy
from engine.store.uow import Zizhi
from tests.api.client import Api

PROBLEM = "application/problem+json"


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_a_year_that_has_not_ended_cannot_be_closed_over_http(api: Api) -> None:
    body = _refused(api.post("/api/v1/years/2100/close", api.admin), 422, "validation_error")
    assert "2100 年度尚未结束" in body["detail"] and "year" in body["errors"]
    assert api.ok(api.get("/api/v1/years/2100", api.admin))["closed"] is False


@pytest.fixture
def own_api(fresh_z: Zizhi) -> Iterator[Api]:
    """The API on a database of its own: closing years is district-wide."""
    with TestClient(create_app(fresh_z, Settings()), raise_server_exceptions=False) as client:
        yield Api(client, fresh_z)


def test_an_admin_reopens_a_closed_year_and_the_year_says_so(own_api: Api) -> None:
    api = own_api
    auditor = api.token("auditor")
    _refused(api.post("/api/v1/years/2011/reopen", api.admin), 404, "not_found")
    closed = api.ok(api.post("/api/v1/years/2011/close", api.admin))
    status = api.ok(api.get("/api/v1/years/2011", auditor))
    assert (status["closed"], status["projects_released"], status["released_fen"]) == (
        True,
        0,
        0,
    )
    assert status["closed_at"] == closed["closed_at"]
    _refused(api.post("/api/v1/years/2011/reopen", auditor), 403, "forbidden")
    reopened = api.ok(api.post("/api/v1/years/2011/reopen", api.admin))
    assert (reopened["closed"], reopened["projects_restored"]) == (False, 0)
    assert api.ok(api.get("/api/v1/years/2011", auditor))["closed"] is False
    types = [
        e["type"] for e in api.ok(api.get("/api/v1/audit/events", api.admin, limit=500))["items"]
    ]
    assert "year.reopened" in types
    api.ok(api.post("/api/v1/years/2011/close", api.admin))  # and it closes again


def test_an_urban_party_service_allocation_below_the_floor_is_refused(api: Api) -> None:
    community = api.community()
    officer = api.token("street", streets=[api.street_of(community)])
    path = f"/api/v1/communities/{community}/funds/party_service/2031"
    body = _refused(api.put(path, officer, {"allocated_fen": 10_000_000}), 422, "validation_error")
    assert "不少于 20000000 分" in body["detail"] and "200,000.00 元" in body["detail"]
    assert "allocated_fen" in body["errors"]
    assert api.ok(api.put(path, officer, {"allocated_fen": 20_000_000}))["allocated_fen"] == (
        20_000_000
    )
    assert api.ok(api.put(path, officer, {"allocated_fen": 30_000_000}))["allocated_fen"] == (
        30_000_000
    )
    # No floor for villages' party-service money, nor (by default) for self-governance money.
    village = api.community(kind="rural")
    api.ok(
        api.put(
            f"/api/v1/communities/{village}/funds/party_service/2031",
            api.admin,
            {"allocated_fen": 100_000},
        )
    )
    api.ok(
        api.put(
            f"/api/v1/communities/{community}/funds/self_governance/2031",
            api.admin,
            {"allocated_fen": 0},
        )
    )


def test_the_floors_come_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("ZIZHI_PARTY_SERVICE_URBAN_MIN_FEN", "15000000")
    monkeypatch.setenv("ZIZHI_SELF_GOVERNANCE_MIN_FEN", "1000000")
    policy = Settings().allocation_policy()
    assert (policy.party_service_urban_min_fen, policy.self_governance_min_fen) == (
        15_000_000,
        1_000_000,
    )
    assert AllocationPolicy().party_service_urban_min_fen == 20_000_000
    assert AllocationPolicy().self_governance_min_fen == 0
