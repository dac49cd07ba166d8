"""``zizhi serve`` behind nginx on the same host (docs/deployment.md): the sign-in lock-out
counts each person's own address from ``X-Forwarded-For``, not the proxy's, and the session
cookie is Secure when the proxy says the page came over https (``X-Forwarded-Proto``)."""

from __future__ import annotations

import re

import httpx2 as httpx

import engine
from engine import CLI, Zizhi
from engine.usecases import web_sign_in
from tests.e2e.server import serve
from tests.factories import new_id

PASSWORD = "correct horse 电池"


def _sign_in(base: str, username: str, password: str, address: str) -> httpx.Response:
    proxy = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=base, timeout=60, headers=proxy) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        # The browser got its CSRF cookie over https; this client speaks http to the server,
        # as nginx would, so it hands the Secure cookie back itself.
        cookie = re.search(r"zizhi_csrf=([^;]+);.*Secure", page.headers["set-cookie"])
        assert cookie
        return client.post(
            "/login",
            data={"csrf": csrf.group(1), "username": username, "password": password},
            headers={"Cookie": f"zizhi_csrf={cookie.group(1)}"},
            follow_redirects=False,
        )


def test_behind_a_local_proxy_each_person_s_address_is_counted_and_the_cookie_is_secure(
    z: Zizhi,
) -> None:
    username = new_id("u")
    engine.create_user(z, CLI, username=username, role="auditor", password=PASSWORD)
    url = z.db.url.render_as_string(hide_password=False)
    with serve(url) as (base, _):
        for i in range(web_sign_in.ADDRESS_LIMIT):
            assert _sign_in(base, f"nobody{i}", "guess", "203.0.113.7").status_code == 401
        assert _sign_in(base, username, PASSWORD, "203.0.113.7").status_code == 429
        # Everyone else comes through the same proxy and is not locked out with them.
        answer = _sign_in(base, username, PASSWORD, "198.51.100.20")
        assert answer.status_code == 303
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("zizhi_session=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie
