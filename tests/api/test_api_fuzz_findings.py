"""What the fuzzer (test_fuzz.py) found, pinned down one request at a time."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.api.client import Api

PROBLEM = "application/problem+json"


def _cursor(after: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _invalid(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/projects?community_id=lihe%00", "community_id"),
        ("/api/v1/projects?state=a%00", "state"),
        ("/api/v1/communities?street=%00", "street"),
        ("/api/v1/audit/events?actor=token%00", "actor"),
        ("/api/v1/audit/events?type=ledger.%00", "type"),
        ("/api/v1/audit/events.csv?street=%00", "street"),
        ("/api/v1/audit/events.jsonl?community_id=x%00", "community_id"),
        (f"/api/v1/projects?cursor={_cursor(10**30)}", "cursor"),
        (f"/api/v1/audit/events?cursor={_cursor(-(2**64))}", "cursor"),
        (f"/api/v1/communities?cursor={_cursor('a' + chr(0))}", "cursor"),
        ("/api/v1/audit/events?since=0.5", "since"),
        ("/api/v1/audit/events.csv?until=1700000000", "until"),
    ],
)
def test_a_filter_postgresql_could_not_compare_is_refused_not_a_server_error(
    api: Api, path: str, field: str
) -> None:
    _invalid(api.get(path, api.admin), field)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "令牌\x00", "role": "admin"},
        {"name": "街道", "role": "street", "streets": ["金阊\x00"]},
        {"name": "居委会", "role": "committee", "communities": ["lihe\x00"]},
    ],
)
def test_a_token_named_with_a_nul_is_refused_not_a_server_error(
    api: Api, body: dict[str, Any]
) -> None:
    response = api.post("/api/v1/tokens", api.admin, body)
    assert response.status_code == 422, response.text


def test_a_community_id_with_a_trailing_newline_is_refused(api: Api) -> None:
    body = {"id": "lihe\n", "name": "里河", "street": "金阊街道", "district": "姑苏区"}
    _invalid(api.post("/api/v1/communities", api.admin, {**body, "kind": "urban"}), "id")


def test_moments_at_the_ends_of_the_calendar_are_no_server_error(api: Api) -> None:
    community = api.community()
    for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        assert api.get("/api/v1/audit/events", api.admin, since=moment).status_code == 200
        funds = api.get(f"/api/v1/communities/{community}/funds", api.admin, as_of=moment)
        _invalid(funds, "as_of")


@pytest.mark.parametrize(
    "headers", [{"If-Match": ""}, {"If-Match": "null"}, {"Idempotency-Key": ""}]
)
def test_a_malformed_header_is_refused(api: Api, headers: dict[str, str]) -> None:
    committee = api.token("committee", communities=[community := api.community()])
    project = api.project(committee, community)
    response = api.act(committee, project["id"], "cancel", {"reason": "重复"}, **headers)
    _invalid(response, next(iter(headers)))


def test_method_not_allowed_lists_every_method_of_the_address(api: Api) -> None:
    response = api.client.delete("/api/v1/communities", headers=api.auth(api.admin))
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_document_describes_errors_and_parameters_as_served(api: Api) -> None:
    document = api.ok(api.client.get("/openapi.json"))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
            for parameter in operation.get("parameters", []):
                assert "anyOf" not in parameter["schema"], (method, path, parameter["name"])
            if method in ("post", "put"):
                assert "413" in operation["responses"], (method, path)
