"""Fiscal years: their status, and closing one (admin)."""

from __future__ import annotations

from fastapi import APIRouter

import engine
from api.deps import CurrentPrincipal, Idempotency, Year, ZizhiDep
from api.problems import responses
from engine import YearView

router = APIRouter(prefix="/api/v1/years", tags=["years"])


@router.get(
    "/{year}",
    response_model=YearView,
    summary="年度是否已结账",
    responses=responses("unauthenticated", "validation_error"),
)
def get_year(year: Year, z: ZizhiDep, principal: CurrentPrincipal) -> YearView:
    return engine.year_status(z, principal, year)


@router.post(
    "/{year}/close",
    response_model=YearView,
    summary="年度结账（管理员）：释放该年度全部未用预留，此后不再接受预留",
    description="一次事务完成：要么全部释放并记入历史，要么什么都不改变。",
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
