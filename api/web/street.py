"""Street officers' pages: their communities' funds, projects waiting for the street,
allocations; and every community's fund statement with its running balance."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.deps import CommunityId, Year, YearFilter
from api.handoff import page_router
from api.web.forms import Failed, failure, idempotency
from api.web.render import render
from api.web.session import Form, Person, zizhi
from engine import Role

router = page_router()
StreetName = Annotated[str | None, Query(max_length=64)]


@router.get("/street", response_class=HTMLResponse)
def street_page(request: Request, person: Person, street: StreetName = None) -> Response:
    return _street(request, person, street, None)


@router.post("/communities/{community_id}/funds/{fund}/{year}", response_class=HTMLResponse)
def set_allocation(
    request: Request,
    person: Person,
    form: Form,
    community_id: CommunityId,
    fund: Annotated[str, Path(max_length=32)],
    year: Year,
) -> Response:
    z = zizhi(request)
    form_id = f"allocation:{community_id}:{fund}"
    try:
        try:
            allocated = engine.parse_yuan(form.get("allocated", ""))
        except ValueError as exc:
            raise engine.ValidationFailed.fields({"allocated": str(exc)}) from None
        engine.set_allocation(
            z,
            person,
            community_id,
            fund,
            year,
            allocated,
            idempotency=idempotency(person, form, [community_id, fund, year, allocated]),
        )
    except engine.ZizhiError as exc:
        failed = failure(form_id, form, exc)
        if "allocated_fen" in failed.errors:
            failed.errors["allocated"] = failed.errors.pop("allocated_fen")
        street = form.get("street") or None
        return _street(request, person, street, failed, status=409)
    back = form.get("street")
    query = f"?street={back}" if back and person.role is Role.admin else ""
    return RedirectResponse(f"/street{query}#c-{community_id}", status_code=303)


@router.get("/communities/{community_id}/statement", response_class=HTMLResponse)
def statement_page(
    request: Request,
    person: Person,
    community_id: CommunityId,
    fund: Annotated[str, Query(max_length=32)] = "self_governance",
    year: YearFilter = None,
) -> Response:
    z = zizhi(request)
    community = engine.get_community(z, person, community_id)
    year = year or engine.fiscal_year(z.clock())
    lines = engine.every(
        lambda c: engine.statement(z, person, community_id, fund, year, limit=500, cursor=c)
    )
    return render(
        request,
        "statement.html",
        {
            "community": community,
            "fund": fund,
            "year": year,
            "lines": lines,
            "funds": list(engine.Fund),
            "balances": engine.funds(z, person, community_id, year=year),
        },
    )


def _street(
    request: Request,
    person: engine.Principal,
    street: str | None,
    failed: Failed | None,
    status: int = 200,
) -> Response:
    person.require(Role.street, Role.admin)
    z = zizhi(request)
    streets = sorted(person.streets) if person.role is Role.street else None
    if person.role is Role.admin and street is None:
        return render(request, "streets.html", {"streets": engine.public_streets(z)})
    if street is not None and streets is not None and street not in streets:
        raise engine.NotFound(f"街道“{street}”不存在")
    view = engine.overview(z, person, street=street)
    return render(
        request,
        "street.html",
        {"overview": view, "street": street, "failed": failed},
        status_code=status,
    )
