"""The audit feed over HTTP: cursors are positions only, checked, and never widen a scope."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import merkle_reference as ref
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


# --- checkpoints and proofs --------------------------------------------------------------------


def test_the_public_key_and_checkpoint_need_no_token_and_verify_alone(api: Api) -> None:
    api.project(api.token("committee", communities=[c := api.community()]), c)
    key = api.ok(api.get("/api/v1/audit/public-key", None))
    view = api.ok(api.get("/api/v1/audit/checkpoint", None))
    assert key["algorithm"] == "Ed25519" and view["key_id"] == key["key_id"]
    public = serialization.load_pem_public_key(key["public_key_pem"].encode())
    assert isinstance(public, Ed25519PublicKey)
    message = f"zizhi-checkpoint/1\n{view['tree_size']}\n{view['root_hash']}\n{view['timestamp']}\n"
    public.verify(base64.b64decode(view["signature"]), message.encode())
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(view["signature"]), message.replace("\n", "\n ").encode())
    assert "private" not in json.dumps(key).lower()


def test_proofs_over_http(api: Api, scoped: dict[str, str]) -> None:
    auditor = api.token("auditor")
    mine = api.ok(api.get("/api/v1/audit/events", auditor, community_id=scoped["inside"]))
    event = mine["items"][-1]
    view = api.ok(api.get("/api/v1/audit/checkpoint", None))
    proof = api.ok(api.get("/api/v1/audit/proofs/inclusion", auditor, event_id=event["id"]))
    assert proof["tree_size"] == view["tree_size"] and proof["root_hash"] == view["root_hash"]
    assert proof["event_hash"] == event["hash"]
    assert ref.verify_inclusion(
        proof["leaf_index"],
        proof["tree_size"],
        bytes.fromhex(event["hash"]),
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(view["root_hash"]),
    )
    # A street officer proves its own street's events, and is told nothing of others.
    officer = scoped["street_token"]
    api.ok(api.get("/api/v1/audit/proofs/inclusion", officer, event_id=event["id"]))
    others = api.ok(api.get("/api/v1/audit/events", auditor, limit=500))["items"]
    foreign = next(e for e in others if e["community_id"] != scoped["inside"])
    hidden = api.get("/api/v1/audit/proofs/inclusion", officer, event_id=foreign["id"])
    assert hidden.status_code == 404
    first = max(1, view["tree_size"] // 3)
    consistency = api.ok(
        api.get("/api/v1/audit/proofs/consistency", auditor, first=first, second=view["tree_size"])
    )
    assert consistency["second_root_hash"] == view["root_hash"]
    assert ref.verify_consistency(
        first,
        view["tree_size"],
        [bytes.fromhex(h) for h in consistency["consistency_path"]],
        bytes.fromhex(consistency["first_root_hash"]),
        bytes.fromhex(view["root_hash"]),
    )
    assert api.get("/api/v1/audit/proofs/consistency", None, first=1, second=1).status_code == 401
    committee = api.token("committee", communities=[scoped["inside"]])
    assert (
        api.get("/api/v1/audit/proofs/consistency", committee, first=1, second=1).status_code == 403
    )


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("consistency", {"first": "0", "second": "1"}, "first"),
        ("consistency", {"first": "2", "second": "1"}, "first"),
        ("consistency", {"first": "1", "second": str(2**62)}, "second"),
        ("consistency", {"first": "１", "second": "2"}, "first"),
        ("consistency", {"first": "1.0", "second": "2"}, "first"),
        ("consistency", {"first": "-1", "second": "2"}, "first"),
        ("consistency", {"second": "2"}, "first"),
        ("consistency", {"first": "1", "second": "abc"}, "second"),
        ("inclusion", {"event_id": "0"}, "event_id"),
        ("inclusion", {"event_id": "１"}, "event_id"),
        ("inclusion", {}, "event_id"),
        ("inclusion", {"event_id": "1", "tree_size": "0"}, "tree_size"),
        ("inclusion", {"event_id": "1", "tree_size": str(2**62)}, "tree_size"),
        ("inclusion", {"event_id": "1", "tree_size": "1e3"}, "tree_size"),
    ],
)
def test_bad_proof_parameters_are_validation_errors(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    api.community()  # at least one event, so event 1 exists
    response = api.get(f"/api/v1/audit/proofs/{path}", api.admin, **params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"], response.json()


def test_the_notice_board_shows_the_latest_checkpoint(api: Api) -> None:
    community = api.community()
    view = api.ok(api.get("/api/v1/audit/checkpoint", None))
    page = api.client.get(f"/public/{community}")
    assert page.status_code == 200
    latest = api.ok(api.get("/api/v1/audit/checkpoint", None))
    assert latest["root_hash"] in page.text or view["root_hash"] in page.text
    assert "历史检查点" in page.text
