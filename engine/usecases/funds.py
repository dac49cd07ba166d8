"""Funds of a community: balances, the statement (running balance) and allocations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.model import (
    FISCAL_TZ,
    MAX_YEAR,
    MIN_YEAR,
    Account,
    AllocationPolicy,
    Balance,
    CommunityKind,
    Fund,
    IdempotencyKey,
    Principal,
    Role,
    check_year,
    fiscal_year,
)
from engine.rules import fields
from engine.store.ledger import balance, default_allocation
from engine.store.pagination import Page, check_limit, decode_cursor, page_of
from engine.store.scope import visible_community
from engine.store.tables import ledger_entries
from engine.store.uow import Zizhi
from engine.usecases.access_log import record_access


@dataclass(frozen=True, slots=True)
class FundView:
    community_id: str
    fund: str
    year: int
    allocated_fen: int
    reserved_fen: int
    spent_fen: int
    available_fen: int


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One ledger entry and the balances right after it (the running balance)."""

    id: int
    at: datetime
    kind: str
    amount_fen: int
    project_id: int | None
    event_id: int | None  # None only on a default line
    allocated_fen: int
    reserved_fen: int
    spent_fen: int
    available_fen: int
    # An account not used yet (opened on first use) has no entries: its statement opens with
    # one line of the default allocation in force (id 0, no event), from the start of the
    # year or the community's creation, whichever is later.
    default: bool = False


def funds(
    z: Zizhi,
    principal: Principal,
    community_id: str,
    *,
    year: int | None = None,
    as_of: datetime | None = None,
) -> list[FundView]:
    """Both funds of a community-year, now or as of a past moment."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationFailed.fields({"as_of": "时间必须带时区，例如 2026-03-01T12:00:00+08:00"})
    if year is None:
        year = fiscal_year(as_of or z.clock())
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValidationFailed.fields({"as_of": f"时刻须在 {MIN_YEAR} 至 {MAX_YEAR} 年之间"})
    year = check_year(year)
    views = []
    with z.read() as conn:
        visible_community(conn, principal, community_id)
        for fund in Fund:
            account = Account(community_id, fund.value, year)
            if as_of is None:
                views.append(_fund_view(account, balance(conn, account, z.policy)))
            else:
                views.append(_fund_view(account, _balance_as_of(conn, account, as_of, z.policy)))
    return views


def statement(
    z: Zizhi,
    principal: Principal,
    community_id: str,
    fund: str,
    year: int,
    *,
    limit: int = 500,
    cursor: str | None = None,
) -> Page[StatementLine]:
    """The account's entries, oldest first, each with the balances after it."""
    account = _account(community_id, fund, year)
    check_limit(limit)
    e = ledger_entries.c
    with z.read() as conn:
        community = visible_community(conn, principal, community_id)
        rows = conn.execute(
            sa.select(ledger_entries)
            .where(
                e.community_id == account.community_id,
                e.fund == account.fund,
                e.year == account.year,
                e.id > decode_cursor(cursor, 0),
            )
            .order_by(e.id)
            .limit(limit + 1)
        ).all()
    lines = [
        StatementLine(
            id=r.id,
            at=r.at,
            kind=r.kind,
            amount_fen=r.amount_fen,
            project_id=r.project_id,
            event_id=r.event_id,
            allocated_fen=r.allocated_fen,
            reserved_fen=r.reserved_fen,
            spent_fen=r.spent_fen,
            available_fen=r.allocated_fen - r.reserved_fen - r.spent_fen,
        )
        for r in rows
    ]
    if not lines and cursor is None:
        lines = [_default_line(community, account, z.policy)]
    page = page_of(lines, limit, lambda line: line.id)
    asked = {"community_id": community_id, "fund": fund, "year": year, "cursor": cursor}
    record_access(z, principal, "statement", {**asked, "limit": limit}, len(page.items))
    return page


def set_allocation(
    z: Zizhi,
    principal: Principal,
    community_id: str,
    fund: str,
    year: int,
    allocated_fen: Any,
    *,
    idempotency: IdempotencyKey | None = None,
) -> FundView:
    """Set a community-year's allocation; refused below what is already reserved or spent."""
    principal.require(Role.admin, Role.street)
    account = _account(community_id, fund, year)
    spec = fields.FieldSpec(
        "allocated_fen", "int", "分配额（分）", min=0, max=fields.MAX_AMOUNT_FEN
    )
    clean = fields.validate({"allocated_fen": spec}, {"allocated_fen": allocated_fen})
    # An allocation may not change under a closing year: it holds the barrier too.
    with z.change(principal, idempotency, community=community_id, reserving=True) as change:
        if (done := change.replay(FundView)) is not None:
            return done
        _check_floor(z.policy, fund, change.community.kind, clean["allocated_fen"])
        cause = change.history.append(
            "fund.allocation_set",
            {
                "fund": fund,
                "year": year,
                "allocated_fen": clean["allocated_fen"],
            },
            community_id=community_id,
        )
        after = change.ledger.set_allocation(account, clean["allocated_fen"], cause)
        view = _fund_view(account, after)
        change.commit(view)
    return view


# --- internals ---------------------------------------------------------------------------------


def _account(community_id: str, fund: str, year: int) -> Account:
    errors = {}
    if fund not in Fund.__members__:
        errors["fund"] = f"经费类型必须是 {', '.join(Fund)} 之一"
    try:
        check_year(year)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed.fields(errors)
    return Account(community_id, fund, year)


def _check_floor(policy: AllocationPolicy, fund: str, kind: str, allocated: int) -> None:
    floor = policy.min_fen(fund, kind)
    if allocated < floor:
        place = "社区" if kind == CommunityKind.urban else "村"
        raise ValidationFailed.fields(
            {
                "allocated_fen": f"{Fund(fund).label}（{place}）每年不少于 {floor} 分"
                f"（{yuan(floor)} 元），不能设为 {allocated} 分"
            }
        )


def yuan(fen: int) -> str:
    """Fen as yuan for a sentence: 20000000 → 200,000.00."""
    return f"{fen // 100:,}.{fen % 100:02d}"


def _balance_as_of(
    conn: sa.Connection, account: Account, as_of: datetime, policy: AllocationPolicy
) -> Balance:
    """The balances right after the last entry at or before ``as_of`` — what replaying the
    history up to that moment gives. Before the account's first entry it was not yet opened:
    it then had the default allocation and no movement, as an unopened account shows now
    (even if the first entry set another allocation: that was a change at its own moment)."""
    e = ledger_entries.c
    row = conn.execute(
        sa.select(e.allocated_fen, e.reserved_fen, e.spent_fen)
        .where(
            e.community_id == account.community_id,
            e.fund == account.fund,
            e.year == account.year,
            e.at <= as_of,
        )
        .order_by(e.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return Balance(*row)
    return Balance(default_allocation(conn, account, policy), 0, 0)


def _default_line(community: Any, account: Account, policy: AllocationPolicy) -> StatementLine:
    allocated = policy.default_fen(account.fund, community.kind)
    year_start = datetime(account.year, 1, 1, tzinfo=FISCAL_TZ).astimezone(UTC)
    return StatementLine(
        id=0,
        at=max(year_start, community.created_at),
        kind="allocate",
        amount_fen=allocated,
        project_id=None,
        event_id=None,
        allocated_fen=allocated,
        reserved_fen=0,
        spent_fen=0,
        available_fen=allocated,
        default=True,
    )


def _fund_view(account: Account, b: Balance) -> FundView:
    return FundView(
        community_id=account.community_id,
        fund=account.fund,
        year=account.year,
        allocated_fen=b.allocated_fen,
        reserved_fen=b.reserved_fen,
        spent_fen=b.spent_fen,
        available_fen=b.available_fen,
    )
