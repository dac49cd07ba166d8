"""The audit feed over HTTP: cursors are positions only, checked, and never widen a scope."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.client import Api


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "不是游标",
        "%%%",
        _raw({"after": 5}),  # the format before the feed
        _raw({"feed": [0]}),
        _raw({"feed": [0, 1, 2]}),
        _raw({"feed": [-1, 0]}),
        _raw({"feed": [0, 2**63]}),
        _raw({"feed": [True, 1]}),
        _raw({"feed": [0.0, 1]}),
        _raw({"feed": ["0", 1]}),
        _raw({"feed": None}),
        _raw([0, 1]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_bad_cursor_is_a_validation_error(api: Api, cursor: str) -> None:
    for path in ("/api/v1/audit/events",):
        response = api.get(path, api.admin, cursor=cursor)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert "cursor" in response.json()["errors"]


@settings(max_examples=25, deadline=None)
@given(xid=st.integers(0, 2**40), event=st.integers(0, 2**40))
def test_a_forged_cursor_never_shows_another_scopes_events(
    api: Api, scoped: dict[str, str], xid: int, event: int
) -> None:
    for cursor in (_raw({"feed": [0, 0]}), _raw({"feed": [xid, event]})):
        body = api.ok(api.get("/api/v1/audit/events", scoped["street_token"], cursor=cursor))
        assert {e["community_id"] for e in body["items"]} <= {scoped["inside"]}


@pytest.fixture
def scoped(api: Api) -> dict[str, str]:
    street = "游标街道" + api.community()
    inside, outside = api.community(street=street), api.community()
    for community in (inside, outside):
        api.project(api.token("committee", communities=[community]), community)
    return {"inside": inside, "street_token": api.token("street", streets=[street])}


def test_paging_with_the_cursors_served_reads_the_feed_once(
    api: Api, scoped: dict[str, str]
) -> None:
    auditor = api.token("auditor")
    whole = api.ok(
        api.get("/api/v1/audit/events", auditor, limit=500, community_id=scoped["inside"])
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 1, "community_id": scoped["inside"]}
        if cursor:
            params["cursor"] = cursor
        body = api.ok(api.get("/api/v1/audit/events", auditor, **params))
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in whole["items"]] and len(seen) >= 2
