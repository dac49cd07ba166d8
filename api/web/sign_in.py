"""Signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.web.render import render
from api.web.session import (
    SESSION_COOKIE,
    Anyone,
    Form,
    posted_form,
    safe_next,
    set_session_cookie,
    zizhi,
)

# Not a page_router: signing in hashes a password (tens of ms) between its short writes, and
# must not hold the one writers' thread meanwhile. Database's lock still serialises its writes.
router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, who: Anyone, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    if who.principal is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "username": ""})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: Form) -> Response:
    username = form.get("username", "").strip()
    next_path = safe_next(form.get("next"))
    client = request.client.host if request.client else "unknown"
    try:
        signed = engine.web_sign_in(
            zizhi(request), username[:64], form.get("password", "")[:1000], address=client
        )
    except (engine.Unauthenticated, engine.TooManyAttempts) as exc:
        status = 429 if isinstance(exc, engine.TooManyAttempts) else 401
        return render(
            request,
            "login.html",
            {"next": next_path, "username": username, "message": exc.message},
            status_code=status,
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, signed.session_id)
    return response


@router.post("/logout")
async def logout(request: Request, who: Anyone) -> Response:
    # A session that has already ended needs no CSRF check to be forgotten.
    if who.session_id is not None:
        await posted_form(request)
        await run_in_threadpool(engine.web_sign_out, zizhi(request), who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
