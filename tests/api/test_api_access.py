"""Every endpoint × every role × own or foreign community: a token never sees or touches
another community's data, and a role only does what it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.client import Api

ALLOWED, HIDDEN, FORBIDDEN = "allowed", "hidden", "forbidden"
CALLERS = ("committee_own", "committee_foreign", "street_own", "street_foreign", "auditor", "admin")


@dataclass
class Place:
    community: str
    project: dict[str, Any]
    year: int


@pytest.fixture
def place(api: Api) -> Callable[[], Place]:
    """A community with one project in implementation, made fresh for every request."""

    def make() -> Place:
        community = api.community()
        committee = api.token("committee", communities=[community])
        project = api.advance(
            committee, api.project(committee, community), "implementation", budget_fen=100_000
        )
        return Place(community, project, project["year"])

    return make


@pytest.fixture
def tokens(api: Api) -> Callable[[Place], dict[str, str]]:
    def make(p: Place) -> dict[str, str]:
        other = api.community()
        return {
            "committee_own": api.token("committee", communities=[p.community]),
            "committee_foreign": api.token("committee", communities=[other]),
            "street_own": api.token("street", streets=[api.street_of(p.community)]),
            "street_foreign": api.token("street", streets=[api.street_of(other)]),
            "auditor": api.token("auditor"),
            "admin": api.admin,
        }

    return make


READ_EVERYWHERE_IN_SCOPE = {
    "committee_own": ALLOWED,
    "committee_foreign": HIDDEN,
    "street_own": ALLOWED,
    "street_foreign": HIDDEN,
    "auditor": ALLOWED,
    "admin": ALLOWED,
}

# (name, method, path, body, expected by caller)
ENDPOINTS: list[tuple[str, str, str, Any, dict[str, str]]] = [
    ("community", "GET", "/api/v1/communities/{c}", None, READ_EVERYWHERE_IN_SCOPE),
    ("funds", "GET", "/api/v1/communities/{c}/funds", None, READ_EVERYWHERE_IN_SCOPE),
    (
        "statement",
        "GET",
        "/api/v1/communities/{c}/funds/self_governance/{y}/statement",
        None,
        READ_EVERYWHERE_IN_SCOPE,
    ),
    ("pool", "GET", "/api/v1/communities/{c}/demands", None, READ_EVERYWHERE_IN_SCOPE),
    ("project", "GET", "/api/v1/projects/{p}", None, READ_EVERYWHERE_IN_SCOPE),
    ("history", "GET", "/api/v1/projects/{p}/history", None, READ_EVERYWHERE_IN_SCOPE),
    ("expenses", "GET", "/api/v1/projects/{p}/expenses", None, READ_EVERYWHERE_IN_SCOPE),
    ("project demands", "GET", "/api/v1/projects/{p}/demands", None, READ_EVERYWHERE_IN_SCOPE),
    (
        "allocate",
        "PUT",
        "/api/v1/communities/{c}/funds/self_governance/{y}",
        {"allocated_fen": 6_000_000},
        {
            "committee_own": FORBIDDEN,
            "committee_foreign": FORBIDDEN,
            "street_own": ALLOWED,
            "street_foreign": HIDDEN,
            "auditor": FORBIDDEN,
            "admin": ALLOWED,
        },
    ),
    (
        "open project",
        "POST",
        "/api/v1/projects",
        {
            "community_id": "{c}",
            "workflow": "self_governance",
            "title": "新项目",
            "category": "居民自治类",
        },
        {
            "committee_own": ALLOWED,
            "committee_foreign": HIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": FORBIDDEN,
            "admin": FORBIDDEN,
        },
    ),
    (
        "pool demand",
        "POST",
        "/api/v1/communities/{c}/demands",
        {"content": "路灯不亮", "resident": "居民"},
        {
            "committee_own": ALLOWED,
            "committee_foreign": HIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": FORBIDDEN,
            "admin": FORBIDDEN,
        },
    ),
    (
        "expense",
        "POST",
        "/api/v1/projects/{p}/expenses",
        {"amount_fen": 1, "payee": "甲", "invoice_no": "M-1", "description": "x"},
        {
            "committee_own": ALLOWED,
            "committee_foreign": HIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": FORBIDDEN,
            "admin": FORBIDDEN,
        },
    ),
    (
        "complete",
        "POST",
        "/api/v1/projects/{p}/actions/complete_implementation",
        {"report": "完成"},
        {
            "committee_own": ALLOWED,
            "committee_foreign": HIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": HIDDEN,
            "auditor": FORBIDDEN,
            "admin": FORBIDDEN,
        },
    ),
    (
        "cancel",
        "POST",
        "/api/v1/projects/{p}/actions/cancel",
        {"reason": "撤销"},
        {
            "committee_own": ALLOWED,
            "committee_foreign": HIDDEN,
            "street_own": ALLOWED,
            "street_foreign": HIDDEN,
            "auditor": FORBIDDEN,
            "admin": FORBIDDEN,
        },
    ),
    (
        "audit events",
        "GET",
        "/api/v1/audit/events?community_id={c}",
        None,
        {
            "committee_own": FORBIDDEN,
            "committee_foreign": FORBIDDEN,
            "street_own": ALLOWED,
            "street_foreign": ALLOWED,
            "auditor": ALLOWED,
            "admin": ALLOWED,
        },
    ),
    (
        "verify",
        "GET",
        "/api/v1/audit/verify",
        None,
        {
            "committee_own": FORBIDDEN,
            "committee_foreign": FORBIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": ALLOWED,
            "admin": ALLOWED,
        },
    ),
    (
        "create community",
        "POST",
        "/api/v1/communities",
        {
            "id": "new-{c}",
            "name": "新社区",
            "street": "新街道",
            "district": "姑苏区",
            "kind": "urban",
        },
        {
            "committee_own": FORBIDDEN,
            "committee_foreign": FORBIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": FORBIDDEN,
            "admin": ALLOWED,
        },
    ),
    (
        "tokens",
        "GET",
        "/api/v1/tokens",
        None,
        {
            "committee_own": FORBIDDEN,
            "committee_foreign": FORBIDDEN,
            "street_own": FORBIDDEN,
            "street_foreign": FORBIDDEN,
            "auditor": FORBIDDEN,
            "admin": ALLOWED,
        },
    ),
]


def _fill(value: Any, p: Place) -> Any:
    if isinstance(value, str):
        return value.format(c=p.community, p=p.project["id"], y=p.year)
    if isinstance(value, dict):
        return {k: _fill(v, p) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "expected"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_access_matrix(
    api: Api,
    place: Callable[[], Place],
    tokens: Callable[[Place], dict[str, str]],
    name: str,
    method: str,
    path: str,
    body: Any,
    expected: dict[str, str],
) -> None:
    outcomes = {}
    for caller in CALLERS:
        p = place()
        token = tokens(p)[caller]
        response = api.client.request(
            method, _fill(path, p), headers=api.auth(token), json=_fill(body, p)
        )
        status = response.status_code
        outcomes[caller] = (
            ALLOWED
            if status < 400
            else HIDDEN
            if status == 404
            else FORBIDDEN
            if status == 403
            else f"unexpected {status}"
        )
        if outcomes[caller] == HIDDEN:  # refused without a trace of the data
            assert p.community not in response.text or "不存在" in response.text
    assert outcomes == expected


def test_a_foreign_committees_project_list_is_empty_not_an_error(
    api: Api, place: Callable[[], Place], tokens: Callable[[Place], dict[str, str]]
) -> None:
    p = place()
    foreign = tokens(p)["committee_foreign"]
    listed = api.ok(api.get("/api/v1/projects", foreign, community_id=p.community))
    assert listed["items"] == []
