"""The community's demand pool: what residents raised, in person or through the public form."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.deps import CommunityId
from api.handoff import page_router
from api.web.forms import Failed, failure, fields_of, idempotency
from api.web.render import render
from api.web.session import Form, Person, zizhi

router = page_router()


@router.get("/communities/{community_id}/demands", response_class=HTMLResponse)
def pool_page(request: Request, person: Person, community_id: CommunityId) -> Response:
    return _pool(request, person, community_id, None)


@router.post("/communities/{community_id}/demands", response_class=HTMLResponse)
def record_demand(
    request: Request, person: Person, form: Form, community_id: CommunityId
) -> Response:
    z = zizhi(request)
    try:
        data = engine.read_form(engine.DEMAND_FIELDS, form)
        engine.record_demand(
            z,
            person,
            community_id,
            data,
            idempotency=idempotency(person, form, [community_id, "pool", data]),
        )
    except engine.ZizhiError as exc:
        if exc.code in ("not_found", "forbidden"):
            raise
        return _pool(request, person, community_id, failure("demand", form, exc), status=422)
    return RedirectResponse(f"/communities/{community_id}/demands", status_code=303)


def _pool(
    request: Request,
    person: engine.Principal,
    community_id: str,
    failed: Failed | None,
    status: int = 200,
) -> Response:
    z = zizhi(request)
    community = engine.get_community(z, person, community_id)
    pool = engine.every(
        lambda c: engine.list_demands(
            z, person, community_id=community_id, pool=True, limit=500, cursor=c
        )
    )
    return render(
        request,
        "pool.html",
        {
            "community": community,
            "pool": pool,
            "failed": failed,
            "demand_fields": fields_of(engine.DEMAND_FIELDS, "demand", failed),
            "can_record": person.role is engine.Role.committee,
        },
        status_code=status,
    )
