"""The webhook subscriptions API: admin only, the secret shown once, bad input refused with
nothing stored, the delivery log and the event types' schemas."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import CLI, UrlGuard, Zizhi, subscriptions
from tests.api.client import Api
from tests.api.test_refusals_change_nothing import _dump
from tests.webhooks import LOCAL

URL = "http://127.0.0.1:9/hook"  # never sent to: no dispatcher runs in these tests


@pytest.fixture
def hooks(api: Api, client: TestClient, z: Zizhi) -> Iterator[Api]:
    """The API with 127.0.0.0/8 allowed; every subscription is removed afterwards, so that
    the shared database's other tests queue nothing."""
    client.app.state.webhook_guard = LOCAL  # type: ignore[attr-defined]
    yield api
    for hook in subscriptions.list_subscriptions(z, CLI):
        subscriptions.delete_subscription(z, CLI, hook.id)


def create(api: Api, **body: Any) -> Any:
    return api.post("/api/v1/webhooks", api.admin, {"url": URL, "events": ["*"], **body})


def test_the_secret_is_shown_once_and_never_listed_logged_or_recorded(hooks: Api, z: Zizhi) -> None:
    made = hooks.ok(create(hooks, events=["project.transitioned", "ledger.*"]), 201)
    secret = made["secret"]
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 64
    listed = hooks.ok(hooks.get("/api/v1/webhooks", hooks.admin))
    one = hooks.ok(hooks.get(f"/api/v1/webhooks/{made['id']}", hooks.admin))
    rotated = hooks.ok(hooks.post(f"/api/v1/webhooks/{made['id']}/rotate-secret", hooks.admin))
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    audit = hooks.client.get(
        "/api/v1/audit/events.jsonl",
        headers=hooks.auth(hooks.admin),
        params={"type": "webhook.*"},
    ).text
    assert [h["secret"] for h in listed] == [None] and one["secret"] is None
    assert "webhook.created" in audit and "webhook.secret_rotated" in audit
    assert secret not in str(_dump(z)["events"]) and rotated["secret"] not in audit
    assert secret[6:] not in audit


def test_a_replayed_create_answers_the_same_subscription_without_its_secret(
    hooks: Api,
) -> None:
    body = {"url": URL, "events": ["*"]}
    one = hooks.post("/api/v1/webhooks", hooks.admin, body, **{"Idempotency-Key": "hook-1"})
    two = hooks.post("/api/v1/webhooks", hooks.admin, body, **{"Idempotency-Key": "hook-1"})
    assert hooks.ok(one, 201)["id"] == hooks.ok(two, 201)["id"]
    assert one.json()["secret"] and two.json()["secret"] is None
    assert len(hooks.ok(hooks.get("/api/v1/webhooks", hooks.admin))) == 1


BAD = [
    ({"url": "ftp://127.0.0.1/hook"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "http://"}, "url"),
    ({"url": "127.0.0.1/hook"}, "url"),
    ({"url": "http://127.0.0.1:99999/hook"}, "url"),
    ({"url": "http://user:pw@127.0.0.1/hook"}, "url"),
    ({"url": "ｈｔｔｐ://127.0.0.1/hook"}, "url"),  # full-width, as an IME types it
    ({"url": "http://127.0.0.1/ho\u3000ok"}, "url"),  # an ideographic space inside
    ({"url": "http://127.0.0.1\u200b/hook"}, "url"),  # a zero-width space
    ({"url": "http://10.0.0.8/hook"}, "url"),
    ({"url": "http://192.168.1.1/hook"}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
    ({"url": "http://[fd00:ec2::254]/"}, "url"),
    ({"url": "http://0.0.0.0/"}, "url"),
    ({"url": "http://224.0.0.1/"}, "url"),
    ({"events": []}, "events"),
    ({"events": ["project.exploded"]}, "events"),
    ({"events": ["nothing.*"]}, "events"),
    ({"events": ["PROJECT.CREATED"]}, "events"),
    ({"events": "project.created"}, "events"),
    ({"format": "slack"}, "format"),
    ({"community_id": "no-such-community"}, "community_id"),
    ({"street": "没有这个街道"}, "street"),
    ({"street": "\u3000\u3000"}, "street"),
    ({"description": "长" * 201}, "description"),
    ({"bot_secret": "SEC123"}, "bot_secret"),  # only a DingTalk robot signs its URL
    ({"secret": "whsec_chosen"}, "secret"),  # the server makes the secret
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_input_is_a_validation_error_and_stores_nothing(
    hooks: Api, z: Zizhi, body: dict[str, Any], field: str
) -> None:
    before = _dump(z)
    refused = create(hooks, **body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert {name.split(".")[0] for name in refused.json()["errors"]} == {field}
    assert _dump(z) == before


def test_a_name_for_loopback_is_refused_unless_loopback_is_allowed(
    hooks: Api, client: TestClient
) -> None:
    client.app.state.webhook_guard = UrlGuard()  # type: ignore[attr-defined]
    for url in ("http://localhost:8080/hook", "http://127.0.0.1/hook", "http://[::1]/hook"):
        refused = create(hooks, url=url)
        assert refused.status_code == 422 and "url" in refused.json()["errors"], url
    client.app.state.webhook_guard = LOCAL  # type: ignore[attr-defined]
    assert create(hooks, url="http://localhost:8080/hook").status_code == 201


@pytest.mark.parametrize("role", ["committee", "street", "auditor"])
def test_only_an_admin_manages_webhooks(hooks: Api, role: str) -> None:
    community = hooks.community()
    scope = (
        {"communities": [community]}
        if role == "committee"
        else {"streets": [hooks.street_of(community)]}
        if role == "street"
        else {}
    )
    token = hooks.token(role, **scope)
    made = hooks.ok(create(hooks), 201)
    for response in (
        hooks.post("/api/v1/webhooks", token, {"url": URL, "events": ["*"]}),
        hooks.get("/api/v1/webhooks", token),
        hooks.get(f"/api/v1/webhooks/{made['id']}/deliveries", token),
        hooks.post(f"/api/v1/webhooks/{made['id']}/ping", token),
        hooks.client.delete(f"/api/v1/webhooks/{made['id']}", headers=hooks.auth(token)),
    ):
        assert response.status_code == 403, response.text
    assert hooks.get("/api/v1/webhooks", None).status_code == 401


def test_update_disable_enable_ping_and_delete(hooks: Api) -> None:
    community = hooks.community()
    made = hooks.ok(create(hooks), 201)
    path = f"/api/v1/webhooks/{made['id']}"
    changed = hooks.ok(
        hooks.client.patch(
            path,
            headers=hooks.auth(hooks.admin),
            json={"events": ["ledger.*", "project.created"], "community_id": community},
        )
    )
    assert changed["events"] == ["ledger.*", "project.created"]
    assert changed["community_id"] == community
    assert hooks.ok(hooks.post(f"{path}/disable", hooks.admin))["active"] is False
    enabled = hooks.client.patch(path, headers=hooks.auth(hooks.admin), json={"active": True})
    assert hooks.ok(enabled)["active"] is True
    ping = hooks.ok(hooks.post(f"{path}/ping", hooks.admin))
    page = hooks.ok(hooks.get(f"{path}/deliveries", hooks.admin, limit=1))
    assert page["items"][0]["message_id"] == ping["message_id"]
    assert page["items"][0]["type"] == "webhook.test"
    again = hooks.ok(hooks.post(f"{path}/deliveries/{ping['id']}/redeliver", hooks.admin))
    assert again["message_id"] == ping["message_id"]
    assert hooks.client.delete(path, headers=hooks.auth(hooks.admin)).status_code == 200
    assert hooks.get(path, hooks.admin).status_code == 404
    assert hooks.get(f"{path}/deliveries", hooks.admin).status_code == 404


def test_event_types_come_with_a_json_schema_each(hooks: Api) -> None:
    types = hooks.ok(hooks.get("/api/v1/webhooks/event-types", hooks.admin))
    names = {t["type"] for t in types}
    assert {
        "project.created",
        "project.transitioned",
        "demand.created",
        "demand.linked",
        "expense.recorded",
        "ledger.allocated",
        "ledger.reserved",
        "ledger.spent",
        "ledger.released",
        "project.year_closed",
        "year.closed",
        "webhook.test",
    } <= names
    for t in types:
        assert t["schema"]["properties"]["type"]["const"] == t["type"]
        assert t["label"]


@pytest.mark.parametrize(
    ("description", "kept"),
    [
        ("街道数据平台", "街道数据平台"),
        ("\u200b", ""),  # invisible only: blank, no description
        ("\u3000 ", ""),
        ("P\u0084", None),  # a C1 control: refused by the schema and the server alike
        ("A\u202eB", None),  # a bidi override
        ("two\nlines", None),
    ],
)
def test_a_description_the_document_admits_is_accepted_and_one_it_refuses_is_refused(
    hooks: Api, description: str, kept: str | None
) -> None:
    """The document's pattern for a description is the engine's own rule (a fuzzer found a
    C1 control the old pattern let through and the server refused)."""
    schema = hooks.client.get("/openapi.json").json()["components"]["schemas"]["WebhookIn"]
    pattern = schema["properties"]["description"]["anyOf"][0]["pattern"]
    admitted = re.fullmatch(pattern.removeprefix("^").removesuffix("$"), description) is not None
    answer = create(hooks, description=description)
    assert admitted == (kept is not None) == (answer.status_code == 201), answer.text
    if kept is not None:
        assert answer.json()["description"] == kept
