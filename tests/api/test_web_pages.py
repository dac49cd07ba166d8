"""The web pages over HTTP: sign-in, CSRF, lock-out, scopes, bad input, hostile text.

Every test runs on a real SQLite file and on PostgreSQL, through the real app.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import engine
from engine import Zizhi
from engine.usecases import web_sign_in
from tests.api.web_client import (
    PASSWORD,
    browser,
    csrf_of,
    form_key_of,
    new_address,
    sign_in,
    submit,
    user,
)
from tests.factories import World, new_id


@pytest.fixture
def scene(world: World, z: Zizhi) -> dict[str, object]:
    community = world.community()
    street = world.street_of(community)
    other = world.community()
    committee = world.committee(community)
    project = world.advance(world.project(community, committee=committee), "planning")
    foreign = world.project(other)
    engine.record_demand(z, committee, community, {"content": "路灯坏了", "resident": "张大爷"})
    return {
        "community": community,
        "street": street,
        "other": other,
        "project": project.id,
        "foreign": foreign.id,
        "committee": user(z, new_id("u"), "committee", communities=[community]),
        "officer": user(z, new_id("s"), "street", streets=[street]),
        "stranger": user(z, new_id("x"), "street", streets=[world.street_of(other)]),
        "auditor": user(z, new_id("a"), "auditor"),
    }


def test_signing_in_sets_a_session_cookie_that_is_httponly_lax_and_secure_over_https(
    z: Zizhi, scene: dict[str, object]
) -> None:
    with browser(z, https=True) as client:
        answer = sign_in(client, str(scene["committee"]))
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("zizhi_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    with browser(z) as client:
        cookie = next(
            c
            for c in sign_in(client, str(scene["committee"])).headers.get_list("set-cookie")
            if c.startswith("zizhi_session=")
        )
        assert "Secure" not in cookie


def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
    z: Zizhi, scene: dict[str, object]
) -> None:
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        page = f"/projects/{scene['project']}"
        for token in ("", "forged-token-0123456789abcdef"):
            answer = submit(
                client, page, "form-submit_plan", {"budget_fen": "100", "plan": "计划"}, csrf=token
            )
            assert answer.status_code == 403
            assert "表单已失效" in answer.text
        assert engine.get_project(z, _cli(), int(str(scene["project"]))).state == "planning"
        # The sign-in form is protected too.
        with browser(z) as other:
            answer = other.post(
                "/login",
                data={"username": str(scene["committee"]), "password": PASSWORD},
                follow_redirects=False,
            )
            assert answer.status_code == 403 and "zizhi_session" not in answer.headers.get(
                "set-cookie", ""
            )


def test_five_wrong_passwords_lock_the_user_out_even_with_the_right_one(
    z: Zizhi, scene: dict[str, object]
) -> None:
    username = str(scene["officer"])
    for _ in range(web_sign_in.USER_LIMIT):
        with browser(z) as client:  # a new address each time: the user's own count locks
            answer = sign_in(client, username, "wrong password")
            assert answer.status_code == 401 and "用户名或密码错误" in answer.text
            assert f'value="{username}"' in answer.text  # what was typed is kept
    with browser(z) as client:
        answer = sign_in(client, username)
        assert answer.status_code == 429 and "锁定" in answer.text
        assert "zizhi_session" not in answer.headers.get("set-cookie", "")
    # Someone else signs in as usual.
    with browser(z) as client:
        assert sign_in(client, str(scene["auditor"])).status_code == 303


def test_many_failures_from_one_address_lock_that_address_out(
    z: Zizhi, scene: dict[str, object]
) -> None:
    address = new_address()
    with browser(z, address=address) as client:
        for i in range(web_sign_in.ADDRESS_LIMIT):
            assert sign_in(client, f"nobody{i}", "guess").status_code == 401
        assert sign_in(client, str(scene["auditor"])).status_code == 429
    with browser(z) as client:  # from elsewhere the same person still gets in
        assert sign_in(client, str(scene["auditor"])).status_code == 303


def test_signing_out_ends_the_session_everywhere(z: Zizhi, scene: dict[str, object]) -> None:
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        cookie = client.cookies.get("zizhi_session")
        home = client.get("/")
        assert home.status_code == 200
        answer = client.post("/logout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    with browser(z) as replay:
        replay.cookies.set("zizhi_session", str(cookie))
        answer = replay.get("/", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_an_expired_session_goes_to_sign_in_and_then_back_to_the_page(
    database: object, registry: object, scene: dict[str, object]
) -> None:
    now = [datetime.now(UTC)]
    late = Zizhi(database, registry, clock=lambda: now[0])  # type: ignore[arg-type]
    page = f"/projects/{scene['project']}"
    with browser(late) as client:
        sign_in(client, str(scene["committee"]))
        assert client.get(page).status_code == 200
        now[0] += web_sign_in.SESSION_LIFETIME + timedelta(minutes=1)
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next={page}"
        login = client.get(answer.headers["location"])
        assert f'name="next" value="{page}"' in login.text
        back = client.post(
            "/login",
            data={
                "csrf": csrf_of(login.text),
                "username": str(scene["committee"]),
                "password": PASSWORD,
                "next": page,
            },
            follow_redirects=False,
        )
        assert back.status_code == 303 and back.headers["location"] == page


def test_sign_in_never_sends_anyone_to_another_site(z: Zizhi, scene: dict[str, object]) -> None:
    with browser(z) as client:
        login = client.get("/login", params={"next": "//evil.example/x"})
        assert 'name="next" value="/"' in login.text


PAGES = {
    "home": "/",
    "project": "/projects/{project}",
    "foreign_project": "/projects/{foreign}",
    "pool": "/communities/{community}/demands",
    "foreign_pool": "/communities/{other}/demands",
    "statement": "/communities/{community}/statement",
    "foreign_statement": "/communities/{other}/statement",
    "new_project": "/projects/new",
    "street": "/street",
    "audit": "/audit",
    "verify": "/audit/verify",
    "verify_tree": "/audit/verify-tree",
    "access": "/audit/access",
}
# What each person gets: 200 a page, 303 sent on (home), 403 not their role, 404 not theirs.
_TABLE = {  # home project foreign pool foreign statement foreign new street audit verify
    # tree access
    "committee": (200, 200, 404, 200, 404, 200, 404, 200, 403, 403, 403, 403, 403),
    "officer":   (303, 200, 404, 200, 404, 200, 404, 403, 200, 200, 403, 403, 403),
    "stranger":  (303, 404, 200, 404, 200, 404, 200, 403, 200, 200, 403, 403, 403),
    "auditor":   (303, 200, 200, 200, 200, 200, 200, 403, 403, 200, 200, 200, 200),
}  # fmt: skip
EXPECTED = {who: dict(zip(PAGES, row, strict=True)) for who, row in _TABLE.items()}


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_every_page_for_every_role_in_its_own_and_a_foreign_community(
    z: Zizhi, scene: dict[str, object], person: str
) -> None:
    with browser(z) as client:
        sign_in(client, str(scene[person]))
        for name, pattern in PAGES.items():
            answer = client.get(pattern.format(**scene), follow_redirects=False)
            assert answer.status_code == EXPECTED[person][name], (name, answer.text[:300])
            assert "Traceback" not in answer.text
            if answer.status_code in (403, 404):
                assert answer.headers["content-type"].startswith("text/html")
            # Residents' names: the community's own committee and auditors only.
            if answer.status_code == 200 and name in ("pool", "project"):
                shown = "张大爷" in answer.text or "王老伯" in answer.text
                assert shown == (person in ("committee", "auditor")), name
        # Signed out, every page leads to sign-in and back.
    with browser(z) as anonymous:
        for pattern in PAGES.values():
            path = pattern.format(**scene)
            answer = anonymous.get(path, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_an_auditor_s_search_shows_in_the_access_log_page(
    z: Zizhi, scene: dict[str, object]
) -> None:
    with browser(z) as client:
        sign_in(client, str(scene["auditor"]))
        assert client.get(f"/audit?community_id={scene['community']}").status_code == 200
        # Other tests' auditors share this database: narrowed to this one, the search is
        # on the first page however many came before.
        page = client.get("/audit/access", params={"actor": f" user:{scene['auditor']}\u3000"})
        assert page.status_code == 200
        assert "查询历史" in page.text and f"community_id={scene['community']}" in page.text
        assert f'value="user:{scene["auditor"]}"' in page.text  # the filter, kept in the form
        refused = client.get("/audit/access?cursor=not-a-cursor")
        assert refused.status_code == 422 and "Traceback" not in refused.text


def test_a_script_in_a_demand_is_shown_as_text(z: Zizhi, scene: dict[str, object]) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with browser(z) as resident:
        board = resident.get(f"/public/{scene['community']}")
        answer = resident.post(
            f"/public/{scene['community']}/demands",
            data={"csrf": csrf_of(board.text), "content": hostile, "resident": "<b>李</b>"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        pool = client.get(f"/communities/{scene['community']}/demands").text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pool
        assert "<script>" not in pool and "<img src=x" not in pool
        assert "&lt;b&gt;李&lt;/b&gt;" in pool


def test_bad_input_is_refused_beside_the_field_and_keeps_what_was_typed(
    z: Zizhi, scene: dict[str, object]
) -> None:
    page = f"/projects/{scene['project']}"
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        answer = submit(
            client, page, "form-submit_plan", {"budget_fen": "12.345", "plan": "修缮\n两行"}
        )
        assert answer.status_code == 422
        assert "两位小数" in answer.text
        assert 'value="12.345"' in answer.text and "修缮\n两行</textarea>" in answer.text
        assert "Traceback" not in answer.text
        answer = submit(client, page, "form-submit_plan", {"budget_fen": "¥60,000", "plan": "x"})
        assert answer.status_code == 409 and "可用" in answer.text
        assert 'value="¥60,000"' in answer.text
        assert engine.get_project(z, _cli(), int(str(scene["project"]))).state == "planning"
        answer = submit(
            client, page, "form-submit_plan", {"budget_fen": "１２,３４５.６７", "plan": "修缮"}
        )
        assert answer.status_code == 303
        assert engine.get_project(z, _cli(), int(str(scene["project"]))).budget_fen == 1_234_567


def test_a_stale_form_is_refused_and_the_current_state_is_shown(
    z: Zizhi, scene: dict[str, object]
) -> None:
    page = f"/projects/{scene['project']}"
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        stale = client.get(page).text
        assert (
            submit(
                client, page, "form-submit_plan", {"budget_fen": "100", "plan": "甲"}
            ).status_code
            == 303
        )
        # The old page's return form, sent now: the project moved on meanwhile.
        old_version = re.search(r'name="version" value="(\d+)"', stale)
        assert old_version
        answer = submit(
            client,
            page,
            "form-return_for_revision",
            {"reason": "预算太低"},
            version=old_version.group(1),
        )
        assert answer.status_code == 412 and "已被更新" in answer.text
        assert "预算太低" in answer.text  # what was typed is kept
        assert '<span class="badge state-review">' in answer.text


def test_a_double_submitted_form_does_its_change_once(z: Zizhi, world: World) -> None:
    community = world.community()
    project = world.advance(world.project(community), "implementation")
    username = user(z, new_id("u"), "committee", communities=[community])
    page = f"/projects/{project.id}"
    with browser(z) as client:
        sign_in(client, username)
        html = client.get(page).text
        data = {
            "csrf": csrf_of(html),
            "form_key": form_key_of(html, "form-expense"),
            "amount_fen": "100.00",
            "payee": "施工队",
            "invoice_no": "INV-1",
            "description": "材料",
        }
        first = client.post(f"{page}/expenses", data=data, follow_redirects=False)
        second = client.post(f"{page}/expenses", data=data, follow_redirects=False)
        assert first.status_code == second.status_code == 303
    assert len(engine.list_expenses(z, _cli(), project.id)) == 1
    assert engine.get_project(z, _cli(), project.id).spent_fen == 10_000


def test_error_pages_are_chinese_html_without_a_stack_trace(
    z: Zizhi, scene: dict[str, object]
) -> None:
    with browser(z) as client:
        sign_in(client, str(scene["committee"]))
        for path, status in (
            ("/projects/999999999", 404),
            ("/projects/abc", 404),
            ("/public/no-such-place", 404),
            ("/no/such/page", 404),
        ):
            answer = client.get(path, headers={"accept": "text/html"})
            assert answer.status_code == status, path
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "Traceback" not in answer.text and 'File "' not in answer.text
            assert "不存在" in answer.text
        answer = client.post(f"/projects/{scene['project']}/actions/accept", content=b"\xff\xfe")
        assert answer.status_code == 403 and "Traceback" not in answer.text


def _cli() -> engine.Principal:
    return engine.CLI
