"""The committee's pages: home, a project, opening one, and the forms that change it.

Each POST reads the form, hands it to one engine use case and, when that succeeds, sends the
browser back to the page (303); when the engine refuses, the same page is drawn again with
the reason beside the form and what was typed still in it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.handoff import page_router
from api.web.forms import ActionForm, Failed, failure, fields_of, idempotency
from api.web.render import render
from api.web.session import Form, Person, zizhi
from api.web.timeline import timeline
from engine import Role

router = page_router()
ProjectId = Annotated[int, Path(ge=1, le=2**63 - 1)]

REFUSAL_STATUS = {
    "validation_error": 422,
    "version_conflict": 412,
    "forbidden": 403,
    "not_found": 404,
}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, person: Person) -> Response:
    if person.role is Role.auditor:
        return RedirectResponse("/audit", status_code=303)
    if person.role in (Role.street, Role.admin):
        return RedirectResponse("/street", status_code=303)
    view = engine.overview(zizhi(request), person)
    return render(request, "home.html", {"overview": view})


@router.get("/projects/new", response_class=HTMLResponse)
def new_project_page(
    request: Request,
    person: Person,
    community: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return _new_project(request, person, None, community)


@router.post("/projects", response_class=HTMLResponse)
def open_project(request: Request, person: Person, form: Form) -> Response:
    data = {k: form.get(k, "") for k in ("community_id", "workflow", "title", "menu_item")}
    try:
        project = engine.open_project(
            zizhi(request),
            person,
            **data,
            idempotency=idempotency(person, form, ["open", data]),
        )
    except engine.ZizhiError as exc:
        return _new_project(request, person, failure("open", form, exc), None, exc)
    return RedirectResponse(f"/projects/{project.id}", status_code=303)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(request: Request, person: Person, project_id: ProjectId) -> Response:
    return _project(request, person, project_id, None)


@router.post("/projects/{project_id}/actions/{action}", response_class=HTMLResponse)
def take_action(
    request: Request,
    person: Person,
    form: Form,
    project_id: ProjectId,
    action: Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$")],
) -> Response:
    z = zizhi(request)
    form_id = f"action:{action}"
    try:
        project = engine.get_project(z, person, project_id)
        wf = z.workflows.get(project.workflow, project.workflow_version)
        act = wf.actions.get(action)
        specs = act.fields if act is not None else {}
        data = engine.read_form(specs, form)
        version = _version(form)
        engine.fire(
            z,
            person,
            project_id,
            action,
            data,
            expected_version=version,
            idempotency=idempotency(person, form, [project_id, action, data, version]),
        )
    except engine.ZizhiError as exc:
        return _project(request, person, project_id, failure(form_id, form, exc), exc)
    return RedirectResponse(f"/projects/{project_id}", status_code=303)


@router.post("/projects/{project_id}/expenses", response_class=HTMLResponse)
def record_expense(request: Request, person: Person, form: Form, project_id: ProjectId) -> Response:
    z = zizhi(request)
    try:
        data = engine.read_form(engine.EXPENSE_FIELDS, form)
        engine.record_expense(
            z,
            person,
            project_id,
            data,
            idempotency=idempotency(person, form, [project_id, "expense", data]),
        )
    except engine.ZizhiError as exc:
        return _project(request, person, project_id, failure("expense", form, exc), exc)
    return RedirectResponse(f"/projects/{project_id}#expenses", status_code=303)


@router.post("/projects/{project_id}/self-management", response_class=HTMLResponse)
def record_self_management(
    request: Request, person: Person, form: Form, project_id: ProjectId
) -> Response:
    z = zizhi(request)
    try:
        data = engine.read_form(engine.SELF_MANAGEMENT_FIELDS, form)
        engine.record_self_management(
            z,
            person,
            project_id,
            data,
            idempotency=idempotency(person, form, [project_id, "self_management", data]),
        )
    except engine.ZizhiError as exc:
        failed = failure("self_management", form, exc)
        return _project(request, person, project_id, failed, exc)
    return RedirectResponse(f"/projects/{project_id}#self-management", status_code=303)


@router.post("/projects/{project_id}/demands", response_class=HTMLResponse)
def add_demand(request: Request, person: Person, form: Form, project_id: ProjectId) -> Response:
    z = zizhi(request)
    from_pool = "demand_id" in form
    form_id = "pool" if from_pool else "demand"
    try:
        if from_pool:
            data: dict[str, Any] = {"demand_id": engine.parse_count(form["demand_id"])}
        else:
            data = engine.read_form(engine.DEMAND_FIELDS, form)
        engine.add_to_project(
            z,
            person,
            project_id,
            data,
            idempotency=idempotency(person, form, [project_id, "demand", data]),
        )
    except engine.ZizhiError as exc:
        return _project(request, person, project_id, failure(form_id, form, exc), exc)
    except ValueError:
        bad = engine.ValidationFailed.fields({"demand_id": "请选择需求"})
        return _project(request, person, project_id, failure(form_id, form, bad), bad)
    return RedirectResponse(f"/projects/{project_id}#demands", status_code=303)


def _version(form: dict[str, str]) -> int | None:
    raw = form.get("version", "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def _project(
    request: Request,
    person: engine.Principal,
    project_id: int,
    failed: Failed | None,
    exc: engine.ZizhiError | None = None,
) -> Response:
    page = engine.project_page(zizhi(request), person, project_id)
    forms = sorted(
        (
            ActionForm(
                id=f"action:{a.name}",
                action=a,
                url=f"/projects/{project_id}/actions/{a.name}",
                fields=fields_of(a.fields, f"action:{a.name}", failed),
                # Ending a project early (不予立项, 撤销) is offered folded away, last.
                way_out=page.workflow.is_final(a.dest) and len(a.sources) > 1,
            )
            for a in page.actions
        ),
        key=lambda f: f.way_out,
    )
    shown = {f.id for f in forms} | {"expense", "demand", "pool", "self_management"}
    status = 200 if exc is None else REFUSAL_STATUS.get(exc.code, 409)
    return render(
        request,
        "project.html",
        {
            "page": page,
            "timeline": timeline(page.history, page.workflow),
            "forms": forms,
            "failed": failed,
            # A refusal whose form is gone (the project moved on) is shown at the top.
            "stray": failed if failed is not None and failed.form not in shown else None,
            "expense_fields": fields_of(page.expense_fields, "expense", failed),
            "demand_fields": fields_of(page.demand_fields, "demand", failed),
            "self_management_fields": fields_of(
                page.self_management_fields, "self_management", failed
            ),
        },
        status_code=status,
    )


def _new_project(
    request: Request,
    person: engine.Principal,
    failed: Failed | None,
    community: str | None,
    exc: engine.ZizhiError | None = None,
) -> Response:
    z = zizhi(request)
    person.require(Role.committee)
    communities = engine.every(lambda c: engine.list_communities(z, person, limit=500, cursor=c))
    workflows = [z.workflows.latest(name) for name in z.workflows.names()]
    values = dict(failed.values) if failed else {}
    if community and "community_id" not in values:
        values["community_id"] = community
    return render(
        request,
        "new_project.html",
        {
            "communities": communities,
            "workflows": workflows,
            "menu": z.workflows.menu,
            "values": values,
            "failed": failed,
        },
        status_code=200 if exc is None else REFUSAL_STATUS.get(exc.code, 409),
    )
