"""Who am I, which workflows exist, is the service up. (The home page is in ``api.web``.)"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CurrentPrincipal, ZizhiDep
from api.problems import responses

router = APIRouter()


class Me(BaseModel):
    id: str
    name: str
    role: str
    communities: list[str]
    streets: list[str]


@router.get(
    "/api/v1/me",
    response_model=Me,
    tags=["令牌"],
    summary="当前令牌的身份与范围",
    responses=responses("unauthenticated"),
)
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        id=principal.id,
        name=principal.name,
        role=principal.role.value,
        communities=sorted(principal.communities),
        streets=sorted(principal.streets),
    )


@router.get(
    "/api/v1/workflows",
    tags=["流程"],
    summary="流程定义：阶段、操作、执行角色与字段",
    responses=responses("unauthenticated"),
)
def list_workflows(z: ZizhiDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [wf.describe() for wf in z.workflows.all()]


@router.get("/healthz", tags=["运维"], summary="健康检查（含数据库连通）")
def health(z: ZizhiDep) -> dict[str, str]:
    with z.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
