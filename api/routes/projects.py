"""Projects: open, read, record expenses and demands, read history (actions: ``actions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

import engine
from api.deps import (
    DIGITS,
    MAX_ID,
    CommunityFilter,
    CurrentPrincipal,
    Cursor,
    Idempotency,
    JsonObject,
    Limit,
    Moment,
    ProjectId,
    YearFilter,
    ZizhiDep,
)
from api.handoff import Router
from api.headers import ETAG, LOCATION, set_etag
from api.problems import responses
from api.schemas import (
    ExpenseIn,
    PageOut,
    ProjectIn,
    SelfManagementIn,
    demand_location,
    field_schema,
)
from engine import (
    DEMAND_FIELDS,
    DEMAND_LINK_FIELDS,
    DemandView,
    EventView,
    ExpenseView,
    NotFound,
    ProjectView,
    SelfManagementView,
    ValidationFailed,
    WorkflowRegistry,
)


def _demand_body() -> dict[str, Any]:
    new = {
        "type": "object",
        "title": "NewDemand",
        "description": "新登记需求",
        "additionalProperties": False,
        "properties": {n: field_schema(s) for n, s in DEMAND_FIELDS.items()},
        "required": [n for n, s in DEMAND_FIELDS.items() if s.required],
    }
    pooled = {
        "type": "object",
        "title": "PooledDemand",
        "description": "从需求池纳入",
        "additionalProperties": False,
        # The engine's bounds (a schema-valid id is never refused as out of range)
        "properties": {
            n: {**field_schema(s), "description": "需求池中的需求编号"}
            for n, s in DEMAND_LINK_FIELDS.items()
        },
        "required": list(DEMAND_LINK_FIELDS),
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [new, pooled]},
                    "examples": {
                        "new": {
                            "summary": "新登记需求",
                            "value": {"content": "楼道堆满杂物", "resident": "高阿姨"},
                        },
                        "pooled": {"summary": "从需求池纳入", "value": {"demand_id": 12}},
                    },
                }
            },
        }
    }


def _known(state: str | None, states: list[str]) -> str | None:
    if state is not None and state not in states:
        raise ValidationFailed.fields({"state": f"未知阶段；可用：{'、'.join(states)}"})
    return state


router = Router(prefix="/api/v1/projects", tags=["projects"])


def list_router(workflows: WorkflowRegistry) -> APIRouter:
    """``GET /api/v1/projects``: its ``?state=`` names one of the loaded definitions' states,
    which are known only once they are loaded (the document lists them)."""
    listing = Router(prefix="/api/v1/projects", tags=["projects"])
    # The states of every loaded definition: any other value of ?state= is a mistake.
    states = sorted({state for wf in workflows.all() for state in wf.states})

    @listing.get(
        "",
        response_model=PageOut[ProjectView],
        summary="可见的项目",
        responses=responses("unauthenticated", "validation_error"),
    )
    def list_projects(
        z: ZizhiDep,
        principal: CurrentPrincipal,
        community_id: CommunityFilter = None,
        # A default rather than Annotated: the states are known only here, at build time.
        state: str | None = Query(  # noqa: B008
            None, max_length=64, description="阶段", json_schema_extra={"enum": states}
        ),
        year: YearFilter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> object:
        return engine.list_projects(
            z,
            principal,
            community_id=community_id,
            state=_known(state, states),
            year=year,
            limit=limit,
            cursor=cursor,
        )

    return listing


@router.post(
    "",
    status_code=201,
    response_model=ProjectView,
    summary="新建项目（居委会）",
    responses={
        201: {"headers": {"ETag": ETAG, "Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def open_project(
    body: ProjectIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> ProjectView:
    view = engine.open_project(z, principal, **body.model_dump(), idempotency=idempotency)
    set_etag(response, view.version)
    response.headers["Location"] = f"/api/v1/projects/{view.id}"
    return view


@router.get(
    "/{project_id}",
    response_model=ProjectView,
    summary="项目详情（ETag 为版本号）",
    responses={
        200: {"headers": {"ETag": ETAG}},
        **responses("unauthenticated", "not_found", "validation_error"),
    },
)
def get_project(
    project_id: ProjectId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    response: Response,
    as_of: Annotated[
        Moment | None,
        Query(description="ISO 8601 时刻（须带时区）；给出时返回该时刻的项目，由历史重建"),
    ] = None,
) -> ProjectView:
    view = engine.get_project(z, principal, project_id, as_of=as_of)
    set_etag(response, view.version)
    return view


@router.post(
    "/{project_id}/expenses",
    status_code=201,
    response_model=ExpenseView,
    summary="登记支出（居委会，实施阶段）",
    description="应答的 ETag 为登记后项目的版本号。",
    responses={
        201: {"headers": {"ETag": ETAG, "Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "action_not_allowed",
            "fund_cap_exceeded",
            "already_exists",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def record_expense(
    project_id: ProjectId,
    body: ExpenseIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> ExpenseView:
    view = engine.record_expense(
        z, principal, project_id, body.model_dump(), idempotency=idempotency
    )
    set_etag(response, view.project_version)
    response.headers["Location"] = f"/api/v1/projects/{project_id}/expenses/{view.id}"
    return view


@router.get(
    "/{project_id}/expenses",
    response_model=list[ExpenseView],
    summary="项目支出",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def list_expenses(
    project_id: ProjectId, z: ZizhiDep, principal: CurrentPrincipal
) -> list[ExpenseView]:
    return engine.list_expenses(z, principal, project_id)


@router.get(
    "/{project_id}/expenses/{expense_id}",
    response_model=ExpenseView,
    summary="一笔支出",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_expense(
    project_id: ProjectId,
    expense_id: Annotated[int, Path(ge=1, le=MAX_ID, description="支出编号"), DIGITS],
    z: ZizhiDep,
    principal: CurrentPrincipal,
) -> ExpenseView:
    for expense in engine.list_expenses(z, principal, project_id):
        if expense.id == expense_id:
            return expense
    raise NotFound(f"项目 {project_id} 没有支出 {expense_id}")


@router.post(
    "/{project_id}/self-management",
    status_code=201,
    response_model=SelfManagementView,
    summary="登记自治管理情况（居委会，项目办结后）",
    description=(
        "项目办结后由居民自我管理：谁负责管护、检查日期、发现的情况、可选的志愿者队伍；"
        "记入项目历史（project.self_managed）。应答的 ETag 为登记后项目的版本号。"
    ),
    responses={
        201: {"headers": {"ETag": ETAG, "Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "action_not_allowed",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def record_self_management(
    project_id: ProjectId,
    body: SelfManagementIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> SelfManagementView:
    data = body.model_dump(exclude_none=True)
    view = engine.record_self_management(z, principal, project_id, data, idempotency=idempotency)
    set_etag(response, view.project_version)
    response.headers["Location"] = f"/api/v1/projects/{project_id}/self-management/{view.event_id}"
    return view


@router.get(
    "/{project_id}/self-management",
    response_model=list[SelfManagementView],
    summary="项目的自治管理记录",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def list_self_management(
    project_id: ProjectId, z: ZizhiDep, principal: CurrentPrincipal
) -> list[SelfManagementView]:
    return engine.list_self_management(z, principal, project_id)


@router.get(
    "/{project_id}/self-management/{event_id}",
    response_model=SelfManagementView,
    summary="一条自治管理记录",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_self_management(
    project_id: ProjectId,
    event_id: Annotated[int, Path(ge=1, le=MAX_ID, description="记录（事件）编号"), DIGITS],
    z: ZizhiDep,
    principal: CurrentPrincipal,
) -> SelfManagementView:
    return engine.get_self_management(z, principal, project_id, event_id)


@router.post(
    "/{project_id}/demands",
    status_code=201,
    response_model=DemandView,
    summary="登记项目的居民需求（新登记或从需求池纳入）",
    description="应答的 ETag 为登记后项目的版本号。",
    openapi_extra=_demand_body(),
    responses={
        201: {"headers": {"ETag": ETAG, "Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "action_not_allowed",
            "guard_failed",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def add_project_demand(
    project_id: ProjectId,
    body: JsonObject,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> DemandView:
    view = engine.add_to_project(z, principal, project_id, body, idempotency=idempotency)
    set_etag(response, view.project_version)
    response.headers["Location"] = demand_location(view)
    return view


@router.get(
    "/{project_id}/demands",
    response_model=PageOut[DemandView],
    summary="项目的居民需求",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def list_project_demands(
    project_id: ProjectId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> object:
    return engine.list_demands(z, principal, project_id=project_id, limit=limit, cursor=cursor)


@router.get(
    "/{project_id}/history",
    response_model=list[EventView],
    summary="项目的完整历史（由旧到新）",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_project_history(
    project_id: ProjectId, z: ZizhiDep, principal: CurrentPrincipal
) -> list[EventView]:
    return engine.project_history(z, principal, project_id)
