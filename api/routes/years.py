"""Fiscal years: their status, and closing one (admin)."""

from __future__ import annotations

import engine
from api.deps import CurrentPrincipal, Idempotency, Year, ZizhiDep
from api.handoff import Router
from api.problems import responses
from engine import YearView

router = Router(prefix="/api/v1/years", tags=["years"])


@router.get(
    "/{year}",
    response_model=YearView,
    summary="年度是否已结账，结账释放了多少",
    responses=responses("unauthenticated", "validation_error"),
)
def get_year(year: Year, z: ZizhiDep, principal: CurrentPrincipal) -> YearView:
    return engine.year_status(z, principal, year)


@router.post(
    "/{year}/close",
    response_model=YearView,
    summary="年度结账（管理员）：释放该年度全部未用预留，此后不再接受预留",
    description="一次事务完成：要么全部释放并记入历史，要么什么都不改变。"
    "年度结束（北京时间次年 1 月 1 日零时）之前结账会被拒绝（validation_error）；"
    "此后该年度不再接受新项目和方案（year_closed）。",
    responses=responses(
        "unauthenticated",
        "forbidden",
        "validation_error",
        "already_exists",
        "idempotency_conflict",
        "payload_too_large",
    ),
)
def close_year(
    year: Year, z: ZizhiDep, principal: CurrentPrincipal, idempotency: Idempotency
) -> YearView:
    return engine.close_year(z, principal, year, idempotency=idempotency)


@router.post(
    "/{year}/reopen",
    response_model=YearView,
    summary="撤销年度结账（管理员）：结账释放的预留原样恢复",
    description="只有结账后被释放的项目都没有新的办理记录时才能撤销（否则 action_not_allowed）；"
    "年度未结账时为 not_found。撤销记入系统历史链。",
    responses=responses(
        "unauthenticated",
        "forbidden",
        "not_found",
        "validation_error",
        "action_not_allowed",
        "idempotency_conflict",
        "payload_too_large",
    ),
)
def reopen_year(
    year: Year, z: ZizhiDep, principal: CurrentPrincipal, idempotency: Idempotency
) -> YearView:
    return engine.reopen_year(z, principal, year, idempotency=idempotency)
