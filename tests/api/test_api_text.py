"""Text as people type it, over HTTP: the same invoice written differently is one invoice, the
same street written differently is one street, and unreadable text is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.client import Api
from tests.factories import new_id

PROBLEM = "application/problem+json"


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def running(api: Api) -> tuple[str, int]:
    community = api.community()
    committee = api.token("committee", communities=[community])
    project = api.advance(
        committee, api.project(committee, community), "implementation", budget_fen=1_000_000
    )
    return committee, project["id"]


def _expense(api: Api, committee: str, project: int, payee: str, invoice: str) -> Any:
    return api.post(
        f"/api/v1/projects/{project}/expenses",
        committee,
        {"amount_fen": 100, "payee": payee, "invoice_no": invoice, "description": "材料"},
    )


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (("施工队", "32010099"), ("施工队", "３２０１００９９")),
        (("施工队", "32010099"), ("施工队", "32010099 ")),
        (("施工队", "32010099"), ("施工队", "32010099\u200b")),
        (("施工队", "32010099"), ("施工队", "\u3000３２０１００９９\ufeff")),
        (("施工队", "A1"), ("施工队", "a1")),
        (("p", "F-7"), ("P ", "F-7")),
        (("Ｐ", "F-7"), ("p", "ｆ－７")),
        (("施工队", "a1"), ("施工队", "a1\u00ad")),  # soft hyphen
        (("施工队", "32010099"), ("施工队\u2800", "\u200e3201\u20630099")),
    ],
)
def test_an_invoice_written_differently_is_still_the_same_invoice(
    api: Api, running: tuple[str, int], first: tuple[str, str], again: tuple[str, str]
) -> None:
    committee, project = running
    recorded = api.ok(_expense(api, committee, project, *first), 201)
    body = _refused(_expense(api, committee, project, *again), 409, "already_exists")
    assert f"支出 {recorded['id']}" in body["detail"]
    assert api.ok(api.get(f"/api/v1/projects/{project}", committee))["spent_fen"] == 100


def test_stored_text_is_cleaned_and_a_distinct_invoice_still_passes(
    api: Api, running: tuple[str, int]
) -> None:
    committee, project = running
    recorded = api.ok(_expense(api, committee, project, " 施工队\u3000", "\u200b32010099 "), 201)
    assert (recorded["payee"], recorded["invoice_no"]) == ("施工队", "32010099")
    api.ok(_expense(api, committee, project, "施工队", "32010098"), 201)
    api.ok(_expense(api, committee, project, "另一施工队", "32010099"), 201)


@pytest.mark.parametrize("suffix", ["\u3000", "\u200b", " ", "\ufeff"])
def test_a_street_typed_with_a_trailing_blank_is_the_street_its_officer_sees(
    api: Api, suffix: str
) -> None:
    street = new_id("街道")
    community = api.community(street=street + suffix)
    assert api.ok(api.get(f"/api/v1/communities/{community}", api.admin))["street"] == street
    for typed in (street, street + suffix, "\u3000" + street):
        officer = api.token("street", streets=[typed])
        listed = api.ok(api.get("/api/v1/communities", officer))["items"]
        assert [c["id"] for c in listed] == [community]
        api.ok(api.get(f"/api/v1/communities/{community}", officer))
        filtered = api.ok(api.get("/api/v1/communities", api.admin, street=typed))["items"]
        assert [c["id"] for c in filtered] == [community]


def test_a_street_in_full_width_or_other_case_is_the_same_street(api: Api) -> None:
    base = new_id("st")  # ASCII, so its full-width and upper-case forms differ as typed
    community = api.community(street=f"{base}街道")
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in base.upper())
    officer = api.token("street", streets=[f"{full_width}街道"])
    assert [c["id"] for c in api.ok(api.get("/api/v1/communities", officer))["items"]] == [
        community
    ]


@pytest.mark.parametrize(
    "title",
    [
        "\u200b",
        "\ufeff",
        "\u3164",
        "\u200b\u3000\ufeff",
        "\u200e",
        "\u00ad\u2800",
        "项目\u202e名称",
        "项目\u2066名称",
        "项目\x85名称",
        "项目\x9b名称",
        "项目\x07名称",
    ],
)
def test_unreadable_titles_are_refused(api: Api, title: str) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    body = _refused(
        api.post(
            "/api/v1/projects",
            committee,
            {
                "community_id": community,
                "workflow": "self_governance",
                "title": title,
                "category": "居民自治类",
            },
        ),
        422,
        "validation_error",
    )
    assert "title" in body["errors"]


def test_a_title_is_stored_trimmed_and_composed(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    project = api.ok(
        api.post(
            "/api/v1/projects",
            committee,
            {
                "community_id": community,
                "workflow": "self_governance",
                "title": "\u3000Cafe\u0301 楼道\u200b ",
                "category": "居民自治类",
            },
        ),
        201,
    )
    assert project["title"] == "Café 楼道"
