"""Communities, their funds and their demand pools."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Response

import engine
from api.deps import (
    DIGITS,
    MAX_ID,
    CommunityId,
    CurrentPrincipal,
    Cursor,
    Idempotency,
    Limit,
    Moment,
    NameFilter,
    Year,
    YearFilter,
    ZizhiDep,
)
from api.handoff import Router
from api.headers import LOCATION
from api.problems import responses
from api.schemas import AllocationIn, CommunityIn, DemandIn, PageOut, demand_location
from engine import CommunityView, DemandView, FundView, StatementLine

router = Router(prefix="/api/v1/communities", tags=["communities"])

FundName = Annotated[Literal["self_governance", "party_service"], Path(description="经费类型")]


@router.post(
    "",
    status_code=201,
    response_model=CommunityView,
    summary="创建社区（管理员）",
    responses={
        201: {"headers": {"Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "validation_error",
            "already_exists",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def create_community(
    body: CommunityIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> CommunityView:
    view = engine.create_community(z, principal, **body.model_dump(), idempotency=idempotency)
    response.headers["Location"] = f"/api/v1/communities/{view.id}"
    return view


@router.get(
    "",
    response_model=PageOut[CommunityView],
    summary="可见的社区",
    responses=responses("unauthenticated", "validation_error"),
)
def list_communities(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    street: NameFilter = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> object:
    return engine.list_communities(z, principal, street=street, limit=limit, cursor=cursor)


@router.get(
    "/{community_id}",
    response_model=CommunityView,
    summary="社区详情",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_community(
    community_id: CommunityId, z: ZizhiDep, principal: CurrentPrincipal
) -> CommunityView:
    return engine.get_community(z, principal, community_id)


@router.get(
    "/{community_id}/funds",
    response_model=list[FundView],
    summary="经费余额（当前或某一时刻）",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_funds(
    community_id: CommunityId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    year: YearFilter = None,
    as_of: Annotated[
        Moment | None, Query(description="ISO 8601 时刻（须带时区）；给出时返回该时刻的余额")
    ] = None,
) -> list[FundView]:
    return engine.funds(z, principal, community_id, year=year, as_of=as_of)


@router.get(
    "/{community_id}/funds/{fund}/{year}/statement",
    response_model=PageOut[StatementLine],
    summary="经费明细账（含滚动余额）",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_statement(
    community_id: CommunityId,
    fund: FundName,
    year: Year,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    limit: Limit = 500,
    cursor: Cursor = None,
) -> object:
    return engine.statement(z, principal, community_id, fund, year, limit=limit, cursor=cursor)


@router.put(
    "/{community_id}/funds/{fund}/{year}",
    response_model=FundView,
    summary="设定年度分配额（管理员、本街道）",
    responses=responses(
        "unauthenticated",
        "forbidden",
        "not_found",
        "validation_error",
        "fund_cap_exceeded",
        "year_closed",
        "payload_too_large",
    ),
)
def set_allocation(
    community_id: CommunityId,
    fund: FundName,
    year: Year,
    body: AllocationIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
) -> FundView:
    return engine.set_allocation(z, principal, community_id, fund, year, body.allocated_fen)


@router.post(
    "/{community_id}/demands",
    status_code=201,
    response_model=DemandView,
    summary="登记居民需求到社区需求池（居委会）",
    responses={
        201: {"headers": {"Location": LOCATION}},
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
def record_demand(
    community_id: CommunityId,
    body: DemandIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> DemandView:
    view = engine.record_demand(
        z, principal, community_id, body.model_dump(exclude_none=True), idempotency=idempotency
    )
    response.headers["Location"] = demand_location(view)
    return view


@router.get(
    "/{community_id}/demands",
    response_model=PageOut[DemandView],
    summary="社区的居民需求（pool=true 只看尚未纳入项目的）",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def list_community_demands(
    community_id: CommunityId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    pool: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> object:
    return engine.list_demands(
        z, principal, community_id=community_id, pool=pool, limit=limit, cursor=cursor
    )


@router.get(
    "/{community_id}/demands/{demand_id}",
    response_model=DemandView,
    summary="一条居民需求",
    responses=responses("unauthenticated", "not_found", "validation_error"),
)
def get_demand(
    community_id: CommunityId,
    demand_id: Annotated[int, Path(ge=1, le=MAX_ID, description="需求编号"), DIGITS],
    z: ZizhiDep,
    principal: CurrentPrincipal,
) -> DemandView:
    return engine.get_demand(z, principal, community_id, demand_id)


@router.post(
    "/{community_id}/demands/{demand_id}/erase-personal-data",
    response_model=DemandView,
    summary="应居民申请删除需求中的姓名和联系方式（管理员；删除本身记入历史）",
    responses=responses(
        "unauthenticated",
        "forbidden",
        "not_found",
        "validation_error",
        "already_exists",
        "idempotency_conflict",
        "payload_too_large",
    ),
)
def erase_demand_personal_data(
    community_id: CommunityId,
    demand_id: Annotated[int, Path(ge=1, le=MAX_ID, description="需求编号"), DIGITS],
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
) -> DemandView:
    return engine.erase_personal_data(
        z, principal, community_id, demand_id, idempotency=idempotency
    )
