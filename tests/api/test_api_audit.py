"""What auditors get over HTTP: filtered events, exports, verification."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from tests.api.client import Api


def _district(api: Api) -> dict[str, str]:
    street = "审计街道" + api.community()
    inside, outside = api.community(street=street), api.community()
    committee = api.token("committee", communities=[inside])
    project = api.advance(
        committee, api.project(committee, inside), "implementation", budget_fen=300_000
    )
    other = api.token("committee", communities=[outside])
    api.project(other, outside)
    return {
        "street": street,
        "inside": inside,
        "outside": outside,
        "committee": committee,
        "project": str(project["id"]),
    }


def test_events_filter_by_community_project_type_and_time(api: Api) -> None:
    d = _district(api)
    auditor = api.token("auditor")
    events = api.ok(api.get("/api/v1/audit/events", auditor, community_id=d["inside"], limit=500))[
        "items"
    ]
    assert {e["community_id"] for e in events} == {d["inside"]}
    assert events[0]["type"] == "community.created"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    ledger = api.ok(
        api.get("/api/v1/audit/events", auditor, project_id=d["project"], type="ledger.*")
    )["items"]
    assert [e["type"] for e in ledger] == ["ledger.reserved"]
    moved = api.ok(
        api.get(
            "/api/v1/audit/events", auditor, project_id=d["project"], type="project.transitioned"
        )
    )["items"]
    assert [e["data"]["action"] for e in moved] == [
        "close_collection",
        "accept",
        "submit_plan",
        "approve",
    ]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        api.ok(api.get("/api/v1/audit/events", auditor, community_id=d["inside"], since=future))[
            "items"
        ]
        == []
    )
    first = events[0]
    by_actor = api.ok(
        api.get("/api/v1/audit/events", auditor, actor=first["actor"], community_id=d["inside"])
    )["items"]
    assert by_actor and all(e["actor"] == first["actor"] for e in by_actor)


def test_events_page_with_a_cursor_without_gaps_or_repeats(api: Api) -> None:
    d = _district(api)
    auditor = api.token("auditor")
    everything = api.ok(
        api.get("/api/v1/audit/events", auditor, community_id=d["inside"], limit=500)
    )["items"]
    seen, cursor = [], None
    while True:
        params: dict[str, object] = {"community_id": d["inside"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.ok(api.get("/api/v1/audit/events", auditor, **params))
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in everything]


def test_a_street_officer_sees_only_its_streets_events(api: Api) -> None:
    d = _district(api)
    officer = api.token("street", streets=[d["street"]])
    seen = {
        e["community_id"]
        for e in api.ok(api.get("/api/v1/audit/events", officer, limit=500))["items"]
    }
    assert seen == {d["inside"]}
    foreign = api.ok(api.get("/api/v1/audit/events", officer, community_id=d["outside"]))
    assert foreign["items"] == []


def test_csv_export_has_a_bom_and_every_matching_event(api: Api) -> None:
    d = _district(api)
    auditor = api.token("auditor")
    response = api.client.get(
        "/api/v1/audit/events.csv", headers=api.auth(auditor), params={"community_id": d["inside"]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    listed = api.ok(api.get("/api/v1/audit/events", auditor, community_id=d["inside"], limit=500))[
        "items"
    ]
    assert [int(r["id"]) for r in rows] == [e["id"] for e in listed]
    assert json.loads(rows[0]["data"])["id"] == d["inside"]
    assert rows[0]["hash"] == listed[0]["hash"]


def test_json_lines_export_matches_the_event_list(api: Api) -> None:
    d = _district(api)
    auditor = api.token("auditor")
    response = api.client.get(
        "/api/v1/audit/events.jsonl",
        headers=api.auth(auditor),
        params={"community_id": d["inside"]},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    listed = api.ok(api.get("/api/v1/audit/events", auditor, community_id=d["inside"], limit=500))[
        "items"
    ]
    assert [line["hash"] for line in lines] == [e["hash"] for e in listed]


def test_an_export_by_a_committee_is_refused_before_any_data_is_sent(api: Api) -> None:
    d = _district(api)
    response = api.client.get("/api/v1/audit/events.csv", headers=api.auth(d["committee"]))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_verify_reports_a_clean_chain(api: Api) -> None:
    _district(api)
    report = api.ok(api.get("/api/v1/audit/verify", api.token("auditor")))
    assert report["ok"] is True and report["first_bad"] is None and report["checked"] > 0
