"""The OpenAPI document describes the v1 contract, with examples."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.client import Api
from workflows import load_registry

ACTIONS = sorted({a for wf in load_registry().all() for a in wf.actions})

CONTRACT = [
    ("post", "/api/v1/communities"),
    ("get", "/api/v1/communities/{community_id}/funds"),
    ("get", "/api/v1/communities/{community_id}/funds/{fund}/{year}/statement"),
    ("put", "/api/v1/communities/{community_id}/funds/{fund}/{year}"),
    ("post", "/api/v1/projects"),
    ("get", "/api/v1/projects"),
    ("get", "/api/v1/projects/{project_id}"),
    ("post", "/api/v1/communities/{community_id}/demands"),
    ("post", "/api/v1/projects/{project_id}/demands"),
    *(("post", f"/api/v1/projects/{{project_id}}/actions/{action}") for action in ACTIONS),
    ("post", "/api/v1/projects/{project_id}/expenses"),
    ("get", "/api/v1/projects/{project_id}/history"),
    ("get", "/api/v1/audit/events"),
    ("get", "/api/v1/audit/events.csv"),
    ("get", "/api/v1/audit/events.jsonl"),
    ("get", "/api/v1/audit/verify"),
    ("post", "/api/v1/tokens"),
]


@pytest.fixture
def spec(api: Api) -> dict[str, Any]:
    return dict(api.ok(api.client.get("/openapi.json")))


def test_every_contract_endpoint_is_documented(spec: dict[str, Any]) -> None:
    missing = [(m, p) for m, p in CONTRACT if m not in spec["paths"].get(p, {})]
    assert missing == []


def test_every_post_documents_the_idempotency_key(spec: dict[str, Any]) -> None:
    for path, operations in spec["paths"].items():
        if "post" in operations:
            names = {p["name"] for p in operations["post"].get("parameters", [])}
            assert "Idempotency-Key" in names, path


def test_actions_are_documented_one_by_one_with_examples(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/api/v1/projects/{project_id}/actions/approve"]["post"]
    assert body["operationId"] == "fire_approve"
    request = body["requestBody"]
    assert request["required"] is True
    content = request["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/ApproveRequest"}
    approve = spec["components"]["schemas"]["ApproveRequest"]
    assert approve["properties"]["council_size"]["type"] == "integer"
    assert approve["properties"]["council_size"]["description"] == "议事会人数"
    assert approve["additionalProperties"] is False
    assert content["example"]["votes_for"] == 6
    params = {p["name"] for p in body["parameters"]}
    assert {"If-Match", "Idempotency-Key"} <= params
    assert "/api/v1/projects/{project_id}/actions/{action}" not in spec["paths"]


def test_request_bodies_carry_examples_and_errors_are_problem_documents(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    for name in ("CommunityIn", "ProjectIn", "ExpenseIn", "DemandIn", "AllocationIn", "TokenIn"):
        assert schemas[name].get("examples"), name
    refusal = spec["paths"]["/api/v1/projects/{project_id}/expenses"]["post"]["responses"]["409"]
    assert "application/problem+json" in refusal["content"]
    assert "fund_cap_exceeded" in refusal["description"]


def test_money_fields_are_integers(spec: dict[str, Any]) -> None:
    expense = spec["components"]["schemas"]["ExpenseIn"]["properties"]["amount_fen"]
    assert expense["type"] == "integer" and expense["minimum"] == 1
    view = spec["components"]["schemas"]["ProjectView"]["properties"]
    assert view["reserved_fen"]["type"] == "integer"
