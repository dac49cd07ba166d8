"""Pages for everyone, without signing in: the notice boards and the demand intake."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.deps import CommunityId, YearFilter
from api.handoff import page_router
from api.web.forms import Failed, failure, idempotency
from api.web.render import render
from api.web.session import Form, zizhi

_FRESH = timedelta(hours=1)  # how old a checkpoint the notice board shows at most

router = page_router()
HONEYPOT = "website"  # hidden from people; a bot that fills it in is thanked and ignored
INTAKE_FIELDS = ("content", "resident", "contact")


@router.get("/public", response_class=HTMLResponse)
def public_index(request: Request) -> Response:
    return render(request, "public_index.html", {"streets": engine.public_streets(zizhi(request))})


@router.get("/public/{community_id}", response_class=HTMLResponse)
def notice_board(
    request: Request,
    community_id: CommunityId,
    year: YearFilter = None,
    sent: Annotated[int | None, Query(ge=0, le=1)] = None,
) -> Response:
    return _board(request, community_id, year, None, sent=bool(sent))


@router.post("/public/{community_id}/demands", response_class=HTMLResponse)
def submit_demand(request: Request, community_id: CommunityId, form: Form) -> Response:
    if form.get(HONEYPOT):
        return RedirectResponse(f"/public/{community_id}?sent=1#intake", status_code=303)
    data = {k: form[k] for k in INTAKE_FIELDS if form.get(k, "").strip()}
    for k in ("content", "resident"):
        data.setdefault(k, form.get(k, ""))
    try:
        engine.submit_public_demand(
            zizhi(request),
            community_id,
            data,
            address=request.client.host if request.client else "unknown",
            idempotency=idempotency(None, form, {"community": community_id, **data}),
        )
    except engine.ZizhiError as exc:
        if exc.code == "not_found":
            raise
        status = {"validation_error": 422, "too_many_attempts": 429}.get(exc.code, 409)
        return _board(request, community_id, None, failure("intake", form, exc), status=status)
    return RedirectResponse(f"/public/{community_id}?sent=1#intake", status_code=303)


def _board(
    request: Request,
    community_id: str,
    year: int | None,
    failed: Failed | None,
    *,
    sent: bool = False,
    status: int = 200,
) -> Response:
    z = zizhi(request)
    board = engine.notice_board(z, community_id, year)
    # The latest signed checkpoint, so copies of it live outside the server; one more than
    # an hour old is renewed (signed only if the history has grown since).
    checkpoint = engine.latest_checkpoint(z)
    if checkpoint is None or z.clock() - datetime.fromisoformat(checkpoint.timestamp) > _FRESH:
        checkpoint = engine.checkpoint(z)
    signed_at = datetime.fromisoformat(checkpoint.timestamp).astimezone(engine.FISCAL_TZ)
    return render(
        request,
        "public_board.html",
        {
            "board": board,
            "failed": failed,
            "sent": sent,
            "values": failed.values if failed else {},
            "checkpoint": checkpoint,
            "checkpoint_at": signed_at.strftime("%Y-%m-%d %H:%M"),
        },
        status_code=status,
    )
