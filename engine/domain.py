"""The small vocabularies every part of the engine shares: roles, funds, kinds of place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    street = "street"
    committee = "committee"
    auditor = "auditor"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {
    Role.admin: "管理员",
    Role.street: "街道工作人员",
    Role.committee: "社区居委会",
    Role.auditor: "审计人员",
}


class Fund(StrEnum):
    self_governance = "self_governance"
    party_service = "party_service"

    @property
    def label(self) -> str:
        return _FUND_LABELS[self]


_FUND_LABELS = {
    Fund.self_governance: "居民自治项目经费",
    Fund.party_service: "党组织为民服务专项经费",
}


class CommunityKind(StrEnum):
    urban = "urban"  # 社区
    rural = "rural"  # 村


# Fiscal years follow the calendar in Asia/Shanghai. China has kept UTC+8 without daylight
# saving since 1991, so a fixed offset is exact for every year Zizhi will see.
FISCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def fiscal_year(moment: datetime) -> int:
    return moment.astimezone(FISCAL_TZ).year


def utc_now() -> datetime:
    return datetime.now(UTC)
