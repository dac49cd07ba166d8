"""Erasing a resident's name and contact through the API (admin only; recorded)."""

from __future__ import annotations

from tests.api.client import Api


def test_an_admin_erases_personal_data_and_the_history_records_it(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    auditor = api.token("auditor")
    demand = api.ok(
        api.post(
            f"/api/v1/communities/{community}/demands",
            committee,
            {"content": "健身器材损坏", "resident": "李阿姨", "contact": "13800000000"},
        ),
        201,
    )
    path = f"/api/v1/communities/{community}/demands/{demand['id']}/erase-personal-data"
    refused = api.post(path, committee)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    erased = api.ok(api.post(path, api.admin, **{"Idempotency-Key": "erase-1"}))
    assert erased["resident"] is None and erased["contact"] is None and erased["erased_at"]
    again = api.post(path, api.admin)
    assert again.status_code == 409 and again.json()["code"] == "already_exists"
    replayed = api.ok(api.post(path, api.admin, **{"Idempotency-Key": "erase-1"}))
    assert replayed["erased_at"] is not None
    shown = api.ok(api.get(f"/api/v1/communities/{community}/demands/{demand['id']}", auditor))
    assert (shown["resident"], shown["contact"]) == (None, None)
    types = [
        e["type"]
        for e in api.ok(api.get("/api/v1/audit/events", auditor, community_id=community))["items"]
    ]
    assert types[-1] == "demand.erased" and types.count("demand.erased") == 1
    assert api.ok(api.get("/api/v1/audit/verify", auditor))["ok"] is True


def test_bad_demand_ids_are_validation_errors(api: Api) -> None:
    community = api.community()
    for bad in ("1.0", "０１", "-1", "x"):
        answer = api.post(
            f"/api/v1/communities/{community}/demands/{bad}/erase-personal-data", api.admin
        )
        assert answer.status_code == 422, bad
        assert answer.json()["code"] == "validation_error"
    missing = api.post(
        f"/api/v1/communities/{community}/demands/99999/erase-personal-data", api.admin
    )
    assert missing.status_code == 404
