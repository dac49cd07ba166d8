"""Driving the web pages over HTTP as a browser would: cookies, forms, CSRF tokens."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

import engine
from api.app import create_app
from api.settings import Settings
from engine import CLI, Zizhi

PASSWORD = "web-pass-测试-123"
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address of its own, so lock-outs and rate limits of one test stay there."""
    n = next(_addresses)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def browser(z: Zizhi, *, https: bool = False, address: str | None = None) -> TestClient:
    return TestClient(
        create_app(z, Settings()),
        base_url="https://testserver" if https else "http://testserver",
        raise_server_exceptions=False,
        client=(address or new_address(), 50000),
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def form_key_of(html: str, form_id: str) -> str:
    form = form_html(html, form_id)
    found = re.search(r'name="form_key" value="([^"]+)"', form)
    assert found
    return found.group(1)


def form_html(html: str, form_id: str) -> str:
    start = html.index(f'id="{form_id}"')
    return html[start : html.index("</form>", start)]


def user(z: Zizhi, username: str, role: str, **scope: list[str]) -> str:
    engine.create_user(z, CLI, username=username, role=role, password=PASSWORD, **scope)
    return username


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "username": username, "password": password, "next": "/"},
        follow_redirects=False,
    )


def submit(
    client: TestClient, page_path: str, form_id: str, fields: dict[str, Any], **overrides: str
) -> httpx.Response:
    """Fill in one form of a page as drawn (its hidden fields included) and send it."""
    html = client.get(page_path).text
    form = form_html(html, form_id)
    action = re.search(
        r'action="([^"]+)"', html[html.rindex("<form", 0, html.index(f'id="{form_id}"')) :]
    )
    assert action
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    data = {**hidden, **{k: str(v) for k, v in fields.items()}, **overrides}
    return client.post(action.group(1), data=data, follow_redirects=False)
