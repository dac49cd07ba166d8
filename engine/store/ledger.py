"""The fund ledger: per (community, fund, year) balances and their append-only entries.

Modelled on two-phase transfers. ``reserve`` moves money from available to reserved when a
plan is approved; ``spend`` moves it from reserved to spent as expenses are recorded;
``release`` returns what a closed or cancelled project did not spend; ``allocate`` sets the
year's allocation (signed: an allocation can be lowered, never below reserved + spent).

Invariants, under any interleaving of concurrent requests on SQLite and PostgreSQL:

* reserved + spent ≤ allocated, and no balance is negative;
* every balance equals the sum of its entries (each entry also carries the balances right
  after it, which the statement and ``as_of`` read);
* a project's spent never exceeds what was reserved for it.

The database holds the cap itself: every account movement is one conditional ``UPDATE …
WHERE <enough money> RETURNING`` and the table has a CHECK constraint behind it, so a Python
read-then-write can never let two requests share the last fen. A project's own money moves
here too, on the ``ProjectRecord`` its change has locked, and reaches its row with the rest
of the project, once per change (``engine.store.uow``). An account is created on its
first use with ``INSERT … ON CONFLICT DO NOTHING`` (with its default ``allocate`` entry), so
two racing first uses create it once.

Every entry is also a ``ledger.<kind>`` history event and names the event that caused it;
what each kind does to the balances is ``engine.model.ENTRY_KINDS``, which verification and
replay read too.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import FundCapExceeded, NotFound, YearClosed
from engine.model import ENTRY_KINDS, Account, AllocationPolicy, Balance, ProjectRecord
from engine.store.db import insert_ignore
from engine.store.history import ChainWriter
from engine.store.statements import Prepared
from engine.store.tables import closed_years, communities, fund_accounts, ledger_entries, projects

# --- statements, built once ---------------------------------------------------------------------

_a = fund_accounts.c
_p = projects.c
_ACCOUNT = sa.and_(
    _a.community_id == sa.bindparam("a_community"),
    _a.fund == sa.bindparam("a_fund"),
    _a.year == sa.bindparam("a_year"),
)
_AMOUNT: sa.BindParameter[int] = sa.bindparam("amount", type_=sa.BigInteger)
_BALANCE_COLS = (_a.allocated_fen, _a.reserved_fen, _a.spent_fen)

_BALANCE = Prepared(sa.select(*_BALANCE_COLS).where(_ACCOUNT))
_LOCK_BALANCE = Prepared(sa.select(*_BALANCE_COLS).where(_ACCOUNT).with_for_update())
_EXISTS = Prepared(sa.select(sa.literal(1).label("found")).where(_ACCOUNT))
_KIND = Prepared(sa.select(communities.c.kind).where(communities.c.id == sa.bindparam("community")))
# One statement on the common path: enough money, and the year not closed.
_RESERVE = Prepared(
    sa.update(fund_accounts)
    .where(
        _ACCOUNT,
        _a.allocated_fen - _a.reserved_fen - _a.spent_fen >= _AMOUNT,
        ~sa.exists().where(closed_years.c.year == sa.bindparam("a_year")),
    )
    .values(reserved_fen=_a.reserved_fen + _AMOUNT)
    .returning(*_BALANCE_COLS)
)
_SPEND = Prepared(
    sa.update(fund_accounts)
    .where(_ACCOUNT, _a.reserved_fen >= _AMOUNT)
    .values(reserved_fen=_a.reserved_fen - _AMOUNT, spent_fen=_a.spent_fen + _AMOUNT)
    .returning(*_BALANCE_COLS)
)
_RELEASE = Prepared(
    sa.update(fund_accounts)
    .where(_ACCOUNT, _a.reserved_fen >= _AMOUNT)
    .values(reserved_fen=_a.reserved_fen - _AMOUNT)
    .returning(*_BALANCE_COLS)
)
_ALLOCATE = Prepared(
    sa.update(fund_accounts)
    .where(_ACCOUNT, _a.reserved_fen + _a.spent_fen <= sa.bindparam("allocated"))
    .values(allocated_fen=sa.bindparam("allocated"))
    .returning(*_BALANCE_COLS)
)
_INSERT_ENTRY = Prepared(sa.insert(ledger_entries).returning(ledger_entries.c.id))
_CLOSED = Prepared(
    sa.select(closed_years.c.closed_at).where(closed_years.c.year == sa.bindparam("year"))
)


def balance(conn: Connection, account: Account, policy: AllocationPolicy) -> Balance:
    """Current balances; an account not yet used shows its default allocation."""
    row = _BALANCE.first(conn, account.params())
    if row is not None:
        return Balance(*row)
    return Balance(default_allocation(conn, account, policy), 0, 0)


def default_allocation(conn: Connection, account: Account, policy: AllocationPolicy) -> int:
    found = _KIND.first(conn, {"community": account.community_id})
    if found is None:
        raise NotFound(f"社区“{account.community_id}”不存在")
    return policy.default_fen(account.fund, found.kind)


class Ledger:
    """Ledger movements inside one write transaction, each recorded on the history chain."""

    def __init__(
        self, conn: Connection, history: ChainWriter, policy: AllocationPolicy, at: datetime
    ) -> None:
        self._conn = conn
        self._history = history
        self._policy = policy
        self._at = at

    def available_fen(self, account: Account) -> int:
        return balance(self._conn, account, self._policy).available_fen

    def reserve(self, project: ProjectRecord, amount: int, cause: int) -> None:
        """Reserve ``amount`` of the project's account for it (its approved budget)."""
        account = project.account
        after = self._move(_RESERVE, account, amount)
        if after is None:  # the year is closed, the account not yet opened, or too little
            self._refuse_if_closed(account.year, "无法再预留经费")
            self._open(account, cause)  # nothing to do if it exists, or a racer just opened it
            after = self._move(_RESERVE, account, amount)
        if after is None:
            available = self.available_fen(account)
            raise FundCapExceeded(f"预算 {amount} 分超过本年度可用经费 {available} 分，无法预留")
        self._record(account, "reserve", amount, after, project, cause)

    def spend(self, project: ProjectRecord, amount: int, cause: int) -> None:
        """Spend ``amount`` of what the project holds reserved."""
        if amount > project.reserved_fen:  # the project's row is locked: this read holds
            raise FundCapExceeded(
                f"支出 {amount} 分超过本项目剩余预留经费 {project.reserved_fen} 分"
            )
        after = self._move(_SPEND, project.account, amount)
        if after is None:  # the project had it reserved, so the account must: a broken ledger
            raise RuntimeError(f"ledger account {project.account} holds less than {project.id}")
        self._record(project.account, "spend", amount, after, project, cause)

    def release(self, project: ProjectRecord, cause: int) -> None:
        """Return what the project still holds reserved; nothing to do for 0."""
        amount = project.reserved_fen
        if amount == 0:
            return
        after = self._move(_RELEASE, project.account, amount)
        if after is None:
            raise RuntimeError(f"ledger account {project.account} holds less than {project.id}")
        self._record(project.account, "release", amount, after, project, cause)

    def set_allocation(self, account: Account, allocated: int, cause: int) -> Balance:
        """Set the year's allocation; never below what is already reserved or spent."""
        self._refuse_if_closed(account.year, "不能再调整分配额")
        if self._open(account, cause, allocated=allocated):
            return Balance(allocated, 0, 0)
        current = Balance(*_LOCK_BALANCE.one(self._conn, account.params()))
        row = _ALLOCATE.first(self._conn, {**account.params(), "allocated": allocated})
        if row is None:
            committed = current.reserved_fen + current.spent_fen
            raise FundCapExceeded(
                f"分配额 {allocated} 分低于本年度已预留和已支出的合计 {committed} 分"
            )
        after = Balance(*row)
        delta = allocated - current.allocated_fen
        if delta:
            self._record(account, "allocate", delta, after, None, cause)
        return after

    # --- internals ---------------------------------------------------------------------------

    def _refuse_if_closed(self, year: int, what: str) -> None:
        if _CLOSED.first(self._conn, {"year": year}) is not None:
            raise YearClosed(f"{year} 年度已结账，{what}")

    def _open(self, account: Account, cause: int, *, allocated: int | None = None) -> bool:
        """Create the account on first use; True if this call created it."""
        if allocated is None:
            if _EXISTS.first(self._conn, account.params()) is not None:
                return False
            allocated = default_allocation(self._conn, account, self._policy)
        created = self._conn.execute(
            insert_ignore(self._conn.dialect.name, fund_accounts, fund_accounts.c.year),
            {
                "community_id": account.community_id,
                "fund": account.fund,
                "year": account.year,
                "allocated_fen": allocated,
                "reserved_fen": 0,
                "spent_fen": 0,
            },
        ).first()
        if created is None:
            return False
        self._record(account, "allocate", allocated, Balance(allocated, 0, 0), None, cause)
        return True

    def _move(self, statement: Prepared, account: Account, amount: int) -> Balance | None:
        row = statement.first(self._conn, {**account.params(), "amount": amount})
        return None if row is None else Balance(*row)

    def _record(
        self,
        account: Account,
        kind: str,
        amount: int,
        after: Balance,
        project: ProjectRecord | None,
        cause: int,
    ) -> None:
        """The one place money moves: the entry, its history event and, for a project's
        entry, the project's own money (its row is written once, by the change)."""
        entry = ENTRY_KINDS[kind]
        project_id = None
        if project is not None:
            project_id = project.id
            money = entry.apply(project.money, amount)
            project.reserved_fen, project.spent_fen = money.reserved_fen, money.spent_fen
        entry_id = _INSERT_ENTRY.one(
            self._conn,
            {
                "community_id": account.community_id,
                "fund": account.fund,
                "year": account.year,
                "kind": kind,
                "amount_fen": amount,
                "project_id": project_id,
                "event_id": cause,
                "at": self._at,
                "allocated_fen": after.allocated_fen,
                "reserved_fen": after.reserved_fen,
                "spent_fen": after.spent_fen,
            },
        ).id
        self._history.append(
            entry.event_type,
            {
                "entry_id": entry_id,
                "fund": account.fund,
                "year": account.year,
                "amount_fen": amount,
                "cause_event_id": cause,
                "allocated_fen": after.allocated_fen,
                "reserved_fen": after.reserved_fen,
                "spent_fen": after.spent_fen,
            },
            community_id=account.community_id,
            project_id=project_id,
        )
