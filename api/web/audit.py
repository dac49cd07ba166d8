"""Auditors' pages: search the history, export what was found, verify the chain and the
Merkle tree."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

import engine
from api.handoff import page_router
from api.routes.audit import XLSX_MEDIA_TYPE, _csv, _json_line, xlsx
from api.web.render import render
from api.web.session import Person, zizhi
from engine import Role

router = page_router()
Text = Annotated[str | None, Query(max_length=128)]
Date = Annotated[str | None, Query(max_length=10)]
FILTERS = ("community_id", "street", "project_id", "actor", "type", "since", "until")


def _filter(
    community_id: Text = None,
    street: Text = None,
    project_id: Text = None,
    actor: Text = None,
    type: Text = None,
    since: Date = None,
    until: Date = None,
) -> tuple[engine.EventFilter, dict[str, str], dict[str, str]]:
    """The search as typed (kept in the form), the engine's filter, and what was unreadable."""
    typed = {
        k: v.strip()
        for k, v in zip(
            FILTERS, (community_id, street, project_id, actor, type, since, until), strict=True
        )
        if v and v.strip()
    }
    errors: dict[str, str] = {}
    project = None
    if "project_id" in typed:
        try:
            project = engine.parse_count(typed["project_id"])
        except ValueError:
            errors["project_id"] = "项目编号应为数字"
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for name in ("since", "until"):
        if name in typed:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", typed[name]):
                errors[name] = "日期格式应为 2026-03-01"
                continue
            try:
                day = datetime.strptime(typed[name], "%Y-%m-%d").date()
            except ValueError:
                errors[name] = "日期无效"
                continue
            if name == "until":  # up to and including that day
                day += timedelta(days=1)
            moments[name] = datetime.combine(day, time(), engine.FISCAL_TZ)
    where = engine.EventFilter(
        community_id=typed.get("community_id"),
        street=typed.get("street"),
        project_id=project,
        actor=typed.get("actor"),
        type=typed.get("type"),
        since=moments["since"],
        until=moments["until"],
    )
    return where, typed, errors


Search = Annotated[tuple[engine.EventFilter, dict[str, str], dict[str, str]], Depends(_filter)]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    person: Person,
    search: Search,
    cursor: Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> Response:
    person.require(Role.auditor, Role.admin, Role.street)
    where, typed, errors = search
    page = None
    if not errors:
        page = engine.query_events(zizhi(request), person, where, limit=100, cursor=cursor)
    return render(
        request,
        "audit.html",
        {
            "typed": typed,
            "errors": errors,
            "page": page,
            "query": urlencode(typed),
            "next_query": urlencode({**typed, "cursor": page.next_cursor})
            if page and page.next_cursor
            else None,
        },
        status_code=422 if errors else 200,
    )


@router.get("/audit/events.csv")
def export_csv(request: Request, person: Person, search: Search) -> Response:
    events = engine.stream_events(zizhi(request), person, _checked(search))
    return StreamingResponse(
        _csv(events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


@router.get("/audit/events.jsonl")
def export_jsonl(request: Request, person: Person, search: Search) -> Response:
    events = engine.stream_events(zizhi(request), person, _checked(search))
    return StreamingResponse(
        (_json_line(e) for e in events),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="events.jsonl"'},
    )


@router.get("/audit/events.xlsx")
def export_xlsx(request: Request, person: Person, search: Search) -> Response:
    events = engine.stream_events(zizhi(request), person, _checked(search))
    return StreamingResponse(
        xlsx(events),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="events.xlsx"'},
    )


@router.get("/audit/access", response_class=HTMLResponse)
def access_page(
    request: Request,
    person: Person,
    actor: Text = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The access log, oldest first, 100 a page; ``actor`` narrows it to one person."""
    actor = (actor or "").strip() or None  # as typed, spaces aside; empty: everyone
    page = engine.access_records(zizhi(request), person, actor=actor, limit=100, cursor=cursor)
    return render(request, "access_log.html", {"page": page, "actor": actor or ""})


@router.get("/audit/verify", response_class=HTMLResponse)
def verify_page(request: Request, person: Person) -> Response:
    report = engine.verify(zizhi(request), person)
    return render(request, "verify.html", {"report": report})


@router.get("/audit/verify-tree", response_class=HTMLResponse)
def verify_tree_page(request: Request, person: Person) -> Response:
    report = engine.verify_tree(zizhi(request), person)
    return render(request, "verify_tree.html", {"report": report})


def _checked(
    search: tuple[engine.EventFilter, dict[str, str], dict[str, str]],
) -> engine.EventFilter:
    where, _, errors = search
    if errors:
        raise engine.ValidationFailed.fields(errors)
    return where
