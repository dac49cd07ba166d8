"""Who am I, which workflows exist, is the service up. (The home page is in ``api.web``.)"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentPrincipal, ZizhiDep
from api.handoff import Router
from api.problems import responses

router = Router()


class Me(BaseModel):
    id: str
    name: str
    role: str
    communities: list[str]
    streets: list[str]


class WorkflowState(BaseModel):
    name: str
    label: str = Field(description="阶段名称（中文）")
    final: bool = Field(description="是否为终结阶段")


class WorkflowAction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    label: str = Field(description="操作名称（中文）")
    from_: list[str] = Field(alias="from", description="可从哪些阶段执行")
    to: str = Field(description="执行后的阶段")
    who: list[str] = Field(description="可执行的角色")
    request_schema: dict[str, Any] = Field(
        alias="schema", description="请求体的 JSON Schema（同 POST …/actions/{操作名}）"
    )


class WorkflowDefinition(BaseModel):
    """A loaded workflow definition, for clients that draw forms and timelines."""

    name: str
    version: int
    label: str = Field(description="流程名称（中文）")
    fund: str = Field(description="经费类型")
    initial: str = Field(description="新项目的起始阶段")
    expenses_in: list[str] = Field(description="可登记支出的阶段")
    demands_in: list[str] = Field(description="可登记需求的阶段")
    states: list[WorkflowState]
    actions: list[WorkflowAction]


@router.get(
    "/api/v1/me",
    response_model=Me,
    tags=["tokens"],
    summary="当前令牌的身份与范围",
    responses=responses("unauthenticated"),
)
async def get_me(principal: CurrentPrincipal) -> Me:
    return Me(
        id=principal.id,
        name=principal.name,
        role=principal.role.value,
        communities=sorted(principal.communities),
        streets=sorted(principal.streets),
    )


@router.get(
    "/api/v1/workflows",
    response_model=list[WorkflowDefinition],
    tags=["workflows"],
    summary="流程定义：阶段、操作、执行角色与字段",
    responses=responses("unauthenticated"),
)
def list_workflows(z: ZizhiDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [wf.describe() for wf in z.workflows.all()]


class MenuEntry(BaseModel):
    id: str = Field(description="稳定编号")
    label: str = Field(description="名称（中文）")


class MenuSubItem(MenuEntry):
    items: list[MenuEntry] = Field(description="小项")


class MenuCategory(MenuEntry):
    sub_items: list[MenuSubItem] = Field(description="子项")


class MenuOut(BaseModel):
    """The menu project library (菜单式项目库): a project names one item by its id."""

    version: int
    label: str
    categories: list[MenuCategory]


@router.get(
    "/api/v1/menu",
    response_model=MenuOut,
    tags=["menu"],
    summary="菜单式项目库：大类、子项与小项",
    responses=responses("unauthenticated"),
)
def get_menu(z: ZizhiDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return z.workflows.menu.as_json()


class Health(BaseModel):
    status: str = Field(examples=["ok"])


@router.get(
    "/healthz", response_model=Health, tags=["operations"], summary="健康检查（含数据库连通）"
)
def get_health(z: ZizhiDep) -> dict[str, str]:
    with z.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
