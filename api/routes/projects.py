"""Projects: open, read, fire workflow actions, record expenses and demands, read history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

import engine
from api.deps import (
    CommunityFilter,
    CurrentPrincipal,
    Cursor,
    Idempotency,
    IfMatch,
    JsonObject,
    ProjectId,
    ZizhiDep,
)
from api.problems import responses
from api.schemas import ExpenseIn, PageOut, ProjectIn
from engine import DEMAND_FIELDS, DemandView, EventView, ExpenseView, ProjectView, WorkflowRegistry

Action = Annotated[
    str, Path(max_length=64, pattern=r"^[a-z_]+$", description="操作名", examples=["submit_plan"])
]
Limit = Annotated[int, Query(ge=1, le=500)]

_ACTION_EXAMPLES: dict[str, dict[str, Any]] = {
    "close_collection": {},
    "accept": {"note": "居民反映集中，属于房前屋后急难事"},
    "reject": {"reason": "不属于本社区自治范围"},
    "submit_plan": {"budget_fen": 3_000_000, "plan": "联合物业清理主干道，开展消防演习"},
    "return_for_revision": {"reason": "预算明细不全"},
    "approve": {
        "council_size": 9,
        "attendees": 7,
        "votes_for": 6,
        "votes_against": 1,
        "abstentions": 0,
    },
    "street_approve": {"note": "同意"},
    "complete_implementation": {"report": "通道已疏通，消防演习已开展"},
    "rectify": {"issues": "部分路段仍有堆物"},
    "evaluate": {"score": 5, "report": "居民满意度高"},
    "close": {"notice": "项目已办结，共支出 12,500.00 元", "satisfied": 86, "unsatisfied": 3},
    "cancel": {"reason": "居民需求已由其他途径解决"},
}


def _action_body(workflows: WorkflowRegistry) -> dict[str, Any]:
    """The action's body schema, one alternative per action, from the loaded definitions."""
    schemas: dict[str, dict[str, Any]] = {}
    for wf in workflows.all():
        for action in wf.actions.values():
            schemas.setdefault(action.name, action.request_schema())
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"oneOf": list(schemas.values())},
                    "examples": {
                        name: {"summary": schema["title"], "value": _ACTION_EXAMPLES.get(name, {})}
                        for name, schema in schemas.items()
                    },
                }
            },
        }
    }


def _demand_body() -> dict[str, Any]:
    new = {
        "type": "object",
        "title": "新登记需求",
        "additionalProperties": False,
        "properties": {n: s.json_schema() for n, s in DEMAND_FIELDS.items()},
        "required": [n for n, s in DEMAND_FIELDS.items() if s.required],
    }
    pooled = {
        "type": "object",
        "title": "从需求池纳入",
        "additionalProperties": False,
        "properties": {"demand_id": {"type": "integer", "minimum": 1}},
        "required": ["demand_id"],
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


def build_router(workflows: WorkflowRegistry) -> APIRouter:
    router = APIRouter(prefix="/api/v1/projects", tags=["项目"])

    @router.post(
        "",
        status_code=201,
        response_model=ProjectView,
        summary="新建项目（居委会）",
        responses=responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "idempotency_conflict",
            "payload_too_large",
        ),
    )
    def open_project(
        body: ProjectIn,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        idempotency: Idempotency,
        response: Response,
    ) -> ProjectView:
        view = engine.open_project(z, principal, **body.model_dump(), idempotency=idempotency)
        response.headers["ETag"] = f'"{view.version}"'
        return view

    @router.get(
        "",
        response_model=PageOut[ProjectView],
        summary="可见的项目",
        responses=responses("unauthenticated", "validation_error"),
    )
    def list_projects(
        z: ZizhiDep,
        principal: CurrentPrincipal,
        community_id: CommunityFilter = None,
        state: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> object:
        return engine.list_projects(
            z,
            principal,
            community_id=community_id,
            state=state,
            year=year,
            limit=limit,
            cursor=cursor,
        )

    @router.get(
        "/{project_id}",
        response_model=ProjectView,
        summary="项目详情（ETag 为版本号）",
        responses=responses("unauthenticated", "not_found", "validation_error"),
    )
    def get_project(
        project_id: ProjectId, z: ZizhiDep, principal: CurrentPrincipal, response: Response
    ) -> ProjectView:
        view = engine.get_project(z, principal, project_id)
        response.headers["ETag"] = f'"{view.version}"'
        return view

    @router.post(
        "/{project_id}/actions/{action}",
        response_model=ProjectView,
        summary="执行流程操作",
        openapi_extra=_action_body(workflows),
        description="可选 If-Match（项目 ETag）：版本已变时返回 412 version_conflict。",
        responses=responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "action_not_allowed",
            "guard_failed",
            "fund_cap_exceeded",
            "year_closed",
            "version_conflict",
            "idempotency_conflict",
            "payload_too_large",
        ),
    )
    def fire(
        project_id: ProjectId,
        action: Action,
        body: JsonObject,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        expected: IfMatch,
        idempotency: Idempotency,
        response: Response,
    ) -> ProjectView:
        view = engine.fire(
            z,
            principal,
            project_id,
            action,
            body,
            expected_version=expected,
            idempotency=idempotency,
        )
        response.headers["ETag"] = f'"{view.version}"'
        return view

    @router.post(
        "/{project_id}/expenses",
        status_code=201,
        response_model=ExpenseView,
        summary="登记支出（居委会，实施阶段）",
        responses=responses(
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
    )
    def record_expense(
        project_id: ProjectId,
        body: ExpenseIn,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        idempotency: Idempotency,
    ) -> ExpenseView:
        return engine.record_expense(
            z, principal, project_id, body.model_dump(), idempotency=idempotency
        )

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

    @router.post(
        "/{project_id}/demands",
        status_code=201,
        response_model=DemandView,
        summary="登记项目的居民需求（新登记或从需求池纳入）",
        openapi_extra=_demand_body(),
        responses=responses(
            "unauthenticated",
            "forbidden",
            "not_found",
            "validation_error",
            "action_not_allowed",
            "guard_failed",
            "idempotency_conflict",
            "payload_too_large",
        ),
    )
    def add_demand(
        project_id: ProjectId,
        body: JsonObject,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        idempotency: Idempotency,
    ) -> DemandView:
        return engine.add_to_project(z, principal, project_id, body, idempotency=idempotency)

    @router.get(
        "/{project_id}/demands",
        response_model=PageOut[DemandView],
        summary="项目的居民需求",
        responses=responses("unauthenticated", "not_found", "validation_error"),
    )
    def list_demands(
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
    def history(project_id: ProjectId, z: ZizhiDep, principal: CurrentPrincipal) -> list[EventView]:
        return engine.project_history(z, principal, project_id)

    return router
