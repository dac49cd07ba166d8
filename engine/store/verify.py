"""Checking what the database could have been made to lie about.

``verify_chains``: every chain link and hash, and every chain head. ``verify_ledger``: every
account balance against the sum of its entries, every entry's running balances, every
project's money against its own entries, and each entry against the ``ledger.*`` event that
recorded it, all by the one table of entry kinds (``engine.model.ENTRY_KINDS``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.model import ENTRY_KIND_OF_EVENT, ENTRY_KINDS
from engine.store.history import genesis_hash
from engine.store.tables import chain_heads, events, fund_accounts, ledger_entries, projects
from engine.store.verify_read import (
    AT,
    CHAIN,
    COMMUNITY,
    DATA,
    HASH,
    ID,
    PREV,
    PROJECT,
    SEQ,
    TYPE,
    EventHasher,
    SlowTimes,
    event_rows,
    iso_text,
    load_data,
    raw_rows,
)
from engine.store.verify_read import SLOW as _SLOW_MARK


@dataclass(frozen=True, slots=True)
class ChainFault:
    chain: str
    seq: int
    event_id: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "seq": self.seq,
            "event_id": self.event_id,
            "reason": self.reason,
        }


def verify_chains(
    conn: Connection,
    *,
    batch: int = 2000,
    progress: Any = None,
    chains: Collection[str] | None = None,
    visit: Callable[[Any], None] | None = None,
) -> tuple[int, ChainFault | None]:
    """Recompute every chain (or only ``chains``); return (events checked, first fault or None).

    ``progress``, if given, is called with the number of events checked so far (every
    ``batch`` events). ``visit``, if given, is called with each event found sound, a tuple of
    ``verify_read.EVENT_COLUMNS``, so the other checks need not read the events again.
    """
    heads = {
        row.chain: (row.seq, row.hash)
        for row in conn.execute(sa.select(chain_heads)).all()
        if chains is None or row.chain in chains
    }
    where = None if chains is None else events.c.chain.in_(sorted(chains))
    hasher = EventHasher()
    checked = 0
    seen: set[str] = set()
    chain: str | None = None
    expected_seq, prev = 0, ""
    for row in event_rows(conn, where):
        if row[CHAIN] != chain:
            if chain is not None and (fault := _check_head(chain, expected_seq, prev, heads)):
                return checked, fault
            chain, expected_seq, prev = row[CHAIN], 0, genesis_hash(row[CHAIN])
            seen.add(chain)
        expected_seq += 1
        if row[SEQ] != expected_seq:
            reason = f"序号不连续：应为 {expected_seq}，实为 {row[SEQ]}（有事件缺失）"
            return checked, ChainFault(row[CHAIN], expected_seq, row[ID], reason)
        if row[PREV] != prev:
            reason = "前一事件哈希不符（事件被删除或篡改）"
            return checked, ChainFault(row[CHAIN], row[SEQ], row[ID], reason)
        prev = row[HASH]
        if hasher(row) != prev:
            reason = "事件内容与哈希不符（事件被篡改）"
            return checked, ChainFault(row[CHAIN], row[SEQ], row[ID], reason)
        checked += 1
        if visit is not None:
            visit(row)
        if progress is not None and checked % batch == 0:
            progress(checked)
    if chain is not None and (fault := _check_head(chain, expected_seq, prev, heads)):
        return checked, fault
    for name, (seq, _) in sorted(heads.items()):
        if name not in seen and seq != 0:
            return checked, ChainFault(name, 1, None, "链头记录存在，但该链的事件全部缺失")
    if progress is not None:
        progress(checked)
    return checked, None


def _check_head(
    chain: str, last_seq: int, last_hash: str, heads: Mapping[str, tuple[int, str]]
) -> ChainFault | None:
    head = heads.get(chain)
    if head is None:
        return ChainFault(chain, last_seq, None, "缺少链头记录")
    if head != (last_seq, last_hash):
        return ChainFault(
            chain,
            head[0],
            None,
            f"链头指向第 {head[0]} 条事件，但链上只有 {last_seq} 条（末尾事件缺失）",
        )
    return None


def verify_ledger(
    conn: Connection,
    scope: Collection[str] | None = None,
    recorded: LedgerEvents | None = None,
) -> ChainFault | None:
    """Re-add every account (of the communities in ``scope``, if given) from its entries, and
    compare every column of every entry with the ``ledger.*`` event that recorded it.

    ``recorded``: those events, if the caller already collected them (``LedgerEvents``)."""
    e = ledger_entries.c

    def only(column: Any) -> Any:
        return sa.true() if scope is None else column.in_(sorted(scope))

    if recorded is None:
        recorded = LedgerEvents(scope)
        ledger_types = events.c.type.in_(list(ENTRY_KIND_OF_EVENT))
        for event in event_rows(conn, sa.and_(ledger_types, only(events.c.community_id))):
            recorded.add(event)
    by_event = recorded.entries
    sums: dict[tuple[str, str, int], tuple[int, int, int]] = {}
    by_project: dict[int, tuple[int, int]] = {}
    moves = {name: (k.allocated, k.reserved, k.spent) for name, k in ENTRY_KINDS.items()}
    entries = sa.select(
        e.id, *[iso_text(e.at, conn.dialect.name) if c == "at" else e[c] for c in _AS_RECORDED]
    )
    slow = SlowTimes(conn.dialect)
    at = 1 + _AS_RECORDED.index("at")
    for row in raw_rows(conn, entries.where(only(e.community_id)).order_by(e.id)):
        entry_id, kind, amount, project_id, community_id, fund, year = row[:7]
        key = (community_id, fund, year)
        move = moves.get(kind)
        if move is None:
            return _ledger_fault(key, f"分录 {entry_id} 的类型未知")
        a, r, s = sums.get(key, (0, 0, 0))
        totals = sums[key] = (a + move[0] * amount, r + move[1] * amount, s + move[2] * amount)
        if project_id is not None:
            r, s = by_project.get(project_id, (0, 0))
            by_project[project_id] = (r + move[1] * amount, s + move[2] * amount)
        if totals != row[-3:]:
            return _ledger_fault(key, f"分录 {entry_id} 记载的余额与此前分录累计不符")
        if row[at].startswith(_SLOW_MARK):
            row = (*row[:at], slow(row[at]), *row[at + 1 :])
        if by_event.pop(entry_id, None) != row[1:]:
            return _ledger_fault(key, f"分录 {entry_id} 与历史中记录它的事件不符")
    if by_event:
        entry_id = min(by_event)
        return ChainFault("ledger", 0, None, f"历史中记录的分录 {entry_id} 在账本中缺失")
    accounts = set()
    for row in conn.execute(sa.select(fund_accounts).where(only(fund_accounts.c.community_id))):
        key = (row.community_id, row.fund, row.year)
        accounts.add(key)
        if key not in sums:
            return _ledger_fault(key, "账户没有任何分录（被人为添加）")
        if sums[key] != (row.allocated_fen, row.reserved_fen, row.spent_fen):
            return _ledger_fault(key, "账户余额不等于其分录之和")
    if missing := sorted(set(sums) - accounts):
        return _ledger_fault(missing[0], "账户有分录，但账户记录缺失")
    money = sa.select(projects.c.id, projects.c.reserved_fen, projects.c.spent_fen)
    for project_id, *held in raw_rows(conn, money.where(only(projects.c.community_id))):
        if by_project.get(project_id, (0, 0)) != tuple(held):
            return ChainFault("ledger", 0, None, f"项目 {project_id} 的预留或支出金额与分录不符")
    return None


# An entry's columns, in the order ``LedgerEvents`` reads them from its event.
_AS_RECORDED = (
    "kind",
    "amount_fen",
    "project_id",
    "community_id",
    "fund",
    "year",
    "event_id",
    "at",
    "allocated_fen",
    "reserved_fen",
    "spent_fen",
)


class LedgerEvents:
    """The ``ledger.*`` events (of the communities in ``scope``, if given), each as the entry
    it recorded: entry id → that entry's columns in ``_AS_RECORDED`` order."""

    def __init__(self, scope: Collection[str] | None = None) -> None:
        self.scope = scope
        self.entries: dict[int, tuple[Any, ...]] = {}

    def add(self, event: Any) -> None:
        """Take ``event`` (an ``EVENT_COLUMNS`` tuple) if it is a ledger event in scope."""
        kind = ENTRY_KIND_OF_EVENT.get(event[TYPE])
        if kind is None or (self.scope is not None and event[COMMUNITY] not in self.scope):
            return
        data = load_data(event[DATA])
        self.entries[data["entry_id"]] = (
            kind.name,
            data["amount_fen"],
            event[PROJECT],
            event[COMMUNITY],
            data["fund"],
            data["year"],
            data["cause_event_id"],
            event[AT],
            data["allocated_fen"],
            data["reserved_fen"],
            data["spent_fen"],
        )


def _ledger_fault(key: tuple[str, str, int], reason: str) -> ChainFault:
    community_id, fund, year = key
    return ChainFault(f"ledger:{community_id}/{fund}/{year}", 0, None, reason)
