"""Records and values every layer of the engine shares; no SQL here.

Roles, funds, kinds of place and fiscal years; who acts (``Principal``, ``Actor``); the
Idempotency-Key; the ledger's ``Account``, ``Balance`` and ``AllocationPolicy``; and the
``ProjectRecord`` a change loads and a workflow step updates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from engine import text
from engine.errors import Forbidden, ValidationFailed


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


MIN_YEAR, MAX_YEAR = 2000, 2100


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed.fields({"year": f"年度必须在 {MIN_YEAR} 至 {MAX_YEAR} 之间"})
    return year


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: ``token:<id>``, ``user:<name>``, ``cli`` or ``public``."""

    id: str
    role: str


PUBLIC = Actor("public", "resident")  # a resident, without a token


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # token:<id> | user:<username> | cli
    name: str
    role: Role
    communities: frozenset[str] = frozenset()
    streets: frozenset[str] = frozenset()

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.role.value)

    @property
    def unrestricted(self) -> bool:
        return self.role is Role.admin or (
            self.role is Role.auditor and not self.communities and not self.streets
        )

    def covers(self, community_id: str, street: str) -> bool:
        """Whether a community (and its street) is in scope; streets compare in normal form,
        so ``街道一\u3000`` and ``街道一`` are one street."""
        if self.unrestricted or community_id in self.communities:
            return True
        return bool(self.streets) and text.key(street) in {text.key(s) for s in self.streets}

    def sees_personal_data(self, community_id: str) -> bool:
        """Residents' names and contacts: their own committee and auditors only."""
        if self.role is Role.committee:
            return community_id in self.communities
        return self.role is Role.auditor

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            who = "、".join(r.label for r in roles)
            raise Forbidden(f"此操作只能由{who}执行")


CLI = Principal(id="cli", name="命令行", role=Role.admin)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's Idempotency-Key, scoped to who sent it, and a digest of what was sent."""

    principal: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    """Default yearly allocation of a community that nobody has set explicitly, and the floor
    below which nobody may set it (the seed: each urban community's party-service fund is
    not less than ¥200,000)."""

    self_governance_fen: int = 5_000_000  # ¥50,000 per community
    party_service_urban_fen: int = 20_000_000  # ¥200,000 per urban community
    party_service_rural_fen: int = 0  # rural communities get none unless set
    self_governance_min_fen: int = 0
    party_service_urban_min_fen: int = 20_000_000  # not less than ¥200,000

    def default_fen(self, fund: str, kind: str) -> int:
        if fund == Fund.self_governance:
            return self.self_governance_fen
        if kind == CommunityKind.urban:
            return self.party_service_urban_fen
        return self.party_service_rural_fen

    def min_fen(self, fund: str, kind: str) -> int:
        """The least a (fund, kind of community) may be allocated for a year."""
        if fund == Fund.self_governance:
            return self.self_governance_min_fen
        if kind == CommunityKind.urban:
            return self.party_service_urban_min_fen
        return 0


@dataclass(frozen=True, slots=True)
class Balance:
    allocated_fen: int
    reserved_fen: int
    spent_fen: int

    @property
    def available_fen(self) -> int:
        return self.allocated_fen - self.reserved_fen - self.spent_fen


@dataclass(frozen=True, slots=True)
class EntryKind:
    """A kind of ledger entry: the history event that records it and what it does to the
    balances, per fen of its amount (the project's own reserved and spent move alike)."""

    name: str
    event_type: str
    allocated: int
    reserved: int
    spent: int

    def apply(self, before: Balance, amount: int) -> Balance:
        return Balance(
            before.allocated_fen + self.allocated * amount,
            before.reserved_fen + self.reserved * amount,
            before.spent_fen + self.spent * amount,
        )


# The one table of money movements: recording (engine.store.ledger), verification and
# replay (engine.usecases.audit) all read it.
ENTRY_KINDS: dict[str, EntryKind] = {
    k.name: k
    for k in (
        EntryKind("allocate", "ledger.allocated", allocated=1, reserved=0, spent=0),
        EntryKind("reserve", "ledger.reserved", allocated=0, reserved=1, spent=0),
        EntryKind("spend", "ledger.spent", allocated=0, reserved=-1, spent=1),
        EntryKind("release", "ledger.released", allocated=0, reserved=-1, spent=0),
    )
}
ENTRY_KIND_OF_EVENT: dict[str, EntryKind] = {k.event_type: k for k in ENTRY_KINDS.values()}


@dataclass(frozen=True, slots=True)
class Account:
    community_id: str
    fund: str
    year: int

    def params(self) -> dict[str, Any]:
        return {"a_community": self.community_id, "a_fund": self.fund, "a_year": self.year}


@dataclass(slots=True)
class ProjectRecord:
    """A project as loaded inside a change; the step and its effects update it."""

    id: int
    community_id: str
    workflow: str
    workflow_version: int
    fund: str
    year: int
    title: str
    category: str
    menu_item: str | None
    state: str
    version: int
    budget_fen: int | None
    reserved_fen: int
    spent_fen: int
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def account(self) -> Account:
        return Account(self.community_id, self.fund, self.year)

    @property
    def money(self) -> Balance:
        """The project's own reserved and spent (it allocates nothing)."""
        return Balance(0, self.reserved_fen, self.spent_fen)

    @classmethod
    def from_row(cls, row: Any) -> ProjectRecord:
        values = {name: getattr(row, name) for name in cls.__slots__ if name != "details"}
        return cls(**values, details=json.loads(row.details))
