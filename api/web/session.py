"""Who is looking at a page: the session cookie, sign-in redirects and CSRF tokens.

The session cookie holds a random id (the engine keeps its digest and the person); it is
HttpOnly, SameSite=Lax, and Secure when the page is served over https. Every form carries a
CSRF token that is checked on every POST: the session's token once signed in, before that a
token kept in a cookie of its own (double submit), so the sign-in and the public intake are
protected too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

import engine
from engine import Principal, Zizhi

SESSION_COOKIE = "zizhi_session"
ANON_COOKIE = "zizhi_csrf"
MAX_FORM_FIELDS = 100


class SignInRequired(Exception):
    """No live session: go to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class BadForm(Exception):
    """A POST without the right CSRF token, or not a form at all."""


@dataclass(frozen=True, slots=True)
class Visitor:
    principal: Principal | None
    csrf_token: str
    session_id: str | None = None
    fresh_anon_token: bool = False  # set the anonymous CSRF cookie with this answer


def zizhi(request: Request) -> Zizhi:
    z: Zizhi = request.app.state.zizhi
    return z


def visitor(request: Request) -> Visitor:
    cached: Visitor | None = getattr(request.state, "visitor", None)
    if cached is not None:
        return cached
    z = zizhi(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    found: Visitor | None = None
    if session_id:
        try:
            s = engine.web_session(z, session_id)
            found = Visitor(s.principal, s.csrf_token, session_id)
        except engine.Unauthenticated:
            found = None
    if found is None:
        anon = request.cookies.get(ANON_COOKIE)
        if anon and 20 <= len(anon) <= 100:
            found = Visitor(None, anon)
        else:
            found = Visitor(None, secrets.token_urlsafe(32), fresh_anon_token=True)
    request.state.visitor = found
    return found


def signed_in(request: Request) -> Principal:
    """The signed-in person, or a trip to the sign-in page and back."""
    who = visitor(request)
    if who.principal is None:
        raise SignInRequired(_return_path(request))
    return who.principal


Person = Annotated[Principal, Depends(signed_in)]
Anyone = Annotated[Visitor, Depends(visitor)]


async def posted_form(request: Request) -> dict[str, str]:
    """The submitted form, after its CSRF token has been checked against the visitor's."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("not a form")
    raw = await request.body()
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm("unreadable form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    expected = visitor(request).csrf_token
    if not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        raise BadForm("csrf")
    return form


Form = Annotated[dict[str, str], Depends(posted_form)]


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def set_anon_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        ANON_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def safe_next(value: str | None) -> str:
    """A path on this site to return to; anything else (another site) is the home page."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 32 for ch in value):
        return "/"
    return value


def login_url(next_path: str) -> str:
    return "/login" if next_path == "/" else f"/login?next={quote(next_path, safe='/')}"


def _return_path(request: Request) -> str:
    """Where to come back after signing in: this page, or for a form, the page it was on."""
    if request.method == "GET":
        query = f"?{request.url.query}" if request.url.query else ""
        return safe_next(request.url.path + query)
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.url.netloc:
            return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/"
