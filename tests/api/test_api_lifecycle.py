"""A community committee runs projects through every step over HTTP."""

from __future__ import annotations

import pytest

from tests.api.client import Api
from tests.factories import PATHS


@pytest.mark.parametrize("workflow", ["self_governance", "party_service"])
def test_a_committee_runs_a_project_through_all_seven_steps_over_http(
    api: Api, workflow: str
) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    street = api.token("street", streets=[api.street_of(community)])
    project = api.project(committee, community, workflow)
    assert project["state"] == "demand_collection"
    assert project["allowed_actions"] == ["close_collection", "cancel"]
    project = api.advance(
        committee, project, "implementation", street_token=street, budget_fen=2_500_000
    )
    assert (project["reserved_fen"], project["spent_fen"]) == (2_500_000, 0)
    expense = api.ok(
        api.post(
            f"/api/v1/projects/{project['id']}/expenses",
            committee,
            {
                "amount_fen": 1_000_000,
                "payee": "苏州某物业",
                "invoice_no": "F-001",
                "description": "清运",
            },
        ),
        201,
    )
    assert expense["amount_fen"] == 1_000_000
    project = api.ok(api.get(f"/api/v1/projects/{project['id']}", committee))
    project = api.advance(committee, project, "completed", street_token=street)
    assert (
        project["state"],
        project["reserved_fen"],
        project["spent_fen"],
        project["allowed_actions"],
    ) == ("completed", 0, 1_000_000, [])
    funds = {
        f["fund"]: f for f in api.ok(api.get(f"/api/v1/communities/{community}/funds", committee))
    }
    assert funds[workflow]["spent_fen"] == 1_000_000
    assert funds[workflow]["available_fen"] == funds[workflow]["allocated_fen"] - 1_000_000
    history = api.ok(api.get(f"/api/v1/projects/{project['id']}/history", committee))
    assert [e["data"]["action"] for e in history if e["type"] == "project.transitioned"] == [
        action for _, action, _ in PATHS[workflow]
    ]
    assert history[0]["type"] == "project.created"


def test_get_answers_the_version_as_etag_and_if_match_guards_actions(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    project = api.advance(committee, api.project(committee, community), "screening")
    got = api.get(f"/api/v1/projects/{project['id']}", committee)
    assert got.headers["ETag"] == f'"{project["version"]}"'
    accepted = api.act(
        committee, project["id"], "accept", {"note": "通过"}, **{"If-Match": got.headers["ETag"]}
    )
    assert accepted.status_code == 200
    assert accepted.headers["ETag"] == f'"{project["version"] + 1}"'
    stale = api.act(
        committee,
        project["id"],
        "cancel",
        {"reason": "迟到的请求"},
        **{"If-Match": got.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_conflict"
    assert stale.headers["ETag"] == accepted.headers["ETag"]
    assert api.ok(api.get(f"/api/v1/projects/{project['id']}", committee))["state"] == "planning"


def test_demands_go_to_the_pool_and_a_project_takes_them_up(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    pooled = api.ok(
        api.post(
            f"/api/v1/communities/{community}/demands",
            committee,
            {"content": "小区路灯不亮", "resident": "周先生", "contact": "13700000000"},
        ),
        201,
    )
    assert pooled["project_id"] is None
    pool = api.ok(api.get(f"/api/v1/communities/{community}/demands", committee, pool="true"))
    assert [d["id"] for d in pool["items"]] == [pooled["id"]]
    project = api.project(committee, community)
    linked = api.ok(
        api.post(
            f"/api/v1/projects/{project['id']}/demands", committee, {"demand_id": pooled["id"]}
        ),
        201,
    )
    assert linked["project_id"] == project["id"]
    again = api.post(
        f"/api/v1/projects/{project['id']}/demands", committee, {"demand_id": pooled["id"]}
    )
    assert (again.status_code, again.json()["code"]) == (409, "guard_failed")
    listed = api.ok(api.get(f"/api/v1/projects/{project['id']}/demands", committee))
    assert [d["resident"] for d in listed["items"]] == ["周先生"]
    screening = api.ok(api.act(committee, project["id"], "close_collection"))
    assert screening["state"] == "screening"


def test_projects_are_listed_by_community_state_and_year_with_cursor_pages(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    made = [api.project(committee, community)["id"] for _ in range(5)]
    api.ok(api.act(committee, made[0], "cancel", {"reason": "重复"}))
    seen, cursor = [], None
    while True:
        params = {"community_id": community, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.ok(api.get("/api/v1/projects", committee, **params))
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    cancelled = api.ok(
        api.get("/api/v1/projects", committee, community_id=community, state="cancelled")
    )
    assert [p["id"] for p in cancelled["items"]] == [made[0]]
    year = api.ok(api.get(f"/api/v1/projects/{made[0]}", committee))["year"]
    assert len(api.ok(api.get("/api/v1/projects", committee, year=year))["items"]) == 5
    assert api.ok(api.get("/api/v1/projects", committee, year=year - 1))["items"] == []


def test_the_street_sets_an_allocation_and_the_statement_shows_a_running_balance(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    street = api.token("street", streets=[api.street_of(community)])
    project = api.advance(
        committee, api.project(committee, community), "implementation", budget_fen=1_000_000
    )
    year = project["year"]
    fund = api.ok(
        api.put(
            f"/api/v1/communities/{community}/funds/self_governance/{year}",
            street,
            {"allocated_fen": 6_000_000},
        )
    )
    assert (fund["allocated_fen"], fund["available_fen"]) == (6_000_000, 5_000_000)
    statement = api.ok(
        api.get(
            f"/api/v1/communities/{community}/funds/self_governance/{year}/statement", committee
        )
    )
    assert [(e["kind"], e["amount_fen"], e["available_fen"]) for e in statement["items"]] == [
        ("allocate", 5_000_000, 5_000_000),
        ("reserve", 1_000_000, 4_000_000),
        ("allocate", 1_000_000, 5_000_000),
    ]


def test_workflow_definitions_and_the_callers_identity_are_published(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    me = api.ok(api.get("/api/v1/me", committee))
    assert (me["role"], me["communities"]) == ("committee", [community])
    workflows = {w["name"]: w for w in api.ok(api.get("/api/v1/workflows", committee))}
    approve = next(a for a in workflows["self_governance"]["actions"] if a["name"] == "approve")
    assert approve["label"] == "评议通过"
    assert approve["schema"]["required"] == [
        "council_size",
        "attendees",
        "votes_for",
        "votes_against",
        "abstentions",
    ]


def test_health_answers_and_the_home_page_asks_to_sign_in(api: Api) -> None:
    assert api.ok(api.get("/healthz", None)) == {"status": "ok"}
    home = api.client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/login"
    login = api.client.get("/login")
    assert login.status_code == 200 and "居民自治" in login.text
