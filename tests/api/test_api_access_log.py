"""Who looked at what: every auditor's and street officer's query of the history, statements
and exports is recorded (actor, query, time, rows returned), readable by admins and auditors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.model import fiscal_year, utc_now
from engine.store.uow import Zizhi
from tests.api.client import Api


def _id(api: Api, token: str) -> str:
    return str(api.ok(api.get("/api/v1/me", token))["id"])


def _log(api: Api, actor: str) -> list[dict[str, object]]:
    return list(api.ok(api.get("/api/v1/audit/access-log", api.admin, actor=actor))["items"])


def test_each_audit_query_is_recorded_with_what_it_returned(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    street = api.token("street", streets=[api.street_of(community)])
    project = api.project(committee, community)
    api.advance(committee, project, "review", street_token=street)
    auditor = api.token("auditor")
    me = _id(api, auditor)
    year = fiscal_year(utc_now())
    events = api.ok(api.get("/api/v1/audit/events", auditor, community_id=community, limit=3))
    lines = api.get("/api/v1/audit/events.jsonl", auditor, community_id=community).text
    for path, params in [
        ("/api/v1/audit/events.csv", {"project_id": project["id"]}),
        ("/api/v1/audit/events.xlsx", {"type": "project.*"}),
    ]:
        assert api.get(path, auditor, **params).status_code == 200
    history = api.ok(api.get(f"/api/v1/projects/{project['id']}/history", auditor))
    statement = api.ok(
        api.get(f"/api/v1/communities/{community}/funds/self_governance/{year}/statement", auditor)
    )
    verified = api.ok(api.get("/api/v1/audit/verify", auditor))
    log = _log(api, me)
    assert [(r["what"], r["rows"]) for r in log] == [
        ("events", len(events["items"])),
        ("export", len(lines.splitlines())),
        ("export", len(history)),
        ("export", log[3]["rows"]),
        ("project_history", len(history)),
        ("statement", len(statement["items"])),
        ("verify", verified["checked"]),
    ]
    assert log[0]["query"] == {"community_id": community, "limit": 3}
    assert log[2]["query"] == {"project_id": project["id"]}
    assert log[3]["query"] == {"type": "project.*"} and int(str(log[3]["rows"])) >= 4
    assert all(r["actor"] == me and r["role"] == "auditor" and r["at"] for r in log)
    # The street officer's queries too; the committee's reads are not audit queries.
    api.ok(api.get("/api/v1/audit/events", street, community_id=community))
    assert [r["what"] for r in _log(api, _id(api, street))] == ["events"]
    api.ok(api.get(f"/api/v1/projects/{project['id']}/history", committee))
    assert _log(api, _id(api, committee)) == []


def test_admins_and_auditors_read_the_log_a_scoped_auditor_only_its_own(api: Api) -> None:
    community = api.community()
    whole = api.token("auditor")
    scoped = api.token("auditor", communities=[community])
    committee = api.token("committee", communities=[community])
    api.ok(api.get("/api/v1/audit/events", whole, community_id=community))
    api.ok(api.get("/api/v1/audit/events", scoped, community_id=community))
    seen_by_whole = api.ok(api.get("/api/v1/audit/access-log", whole, limit=500))["items"]
    assert {_id(api, whole), _id(api, scoped)} <= {r["actor"] for r in seen_by_whole}
    own = api.ok(api.get("/api/v1/audit/access-log", scoped))["items"]
    assert {r["actor"] for r in own} == {_id(api, scoped)}
    refused = api.get("/api/v1/audit/access-log", committee)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    for params in ({"cursor": "not-a-cursor"}, {"limit": "0"}, {"actor": "a\nb"}):
        bad = api.get("/api/v1/audit/access-log", whole, **params)
        assert bad.status_code == 422 and bad.json()["code"] == "validation_error", params


def test_the_access_log_is_append_only(api: Api, z: Zizhi) -> None:
    auditor = api.token("auditor")
    api.ok(api.get("/api/v1/audit/events", auditor, limit=1))
    for statement in ("UPDATE access_log SET rows = 0", "DELETE FROM access_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), z.db.write() as conn:
            conn.execute(sa.text(statement))
