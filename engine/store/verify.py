"""Checking what the database could have been made to lie about.

``verify_chains``: every chain link and hash, and every chain head. ``verify_ledger``: every
account balance against the sum of its entries, every entry's running balances, every
project's money against its own entries, and each entry against the ``ledger.*`` event that
recorded it, all by the one table of entry kinds (``engine.model.ENTRY_KINDS``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.model import ENTRY_KIND_OF_EVENT, ENTRY_KINDS, Balance
from engine.store.history import event_hash, genesis_hash
from engine.store.tables import chain_heads, events, fund_accounts, ledger_entries, projects

_ZERO = Balance(0, 0, 0)


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
) -> tuple[int, ChainFault | None]:
    """Recompute every chain (or only ``chains``); return (events checked, first fault or None).

    ``progress``, if given, is called with the number of events checked so far.
    """
    heads = {
        row.chain: (row.seq, row.hash)
        for row in conn.execute(sa.select(chain_heads)).all()
        if chains is None or row.chain in chains
    }
    checked = 0
    chain: str | None = None
    expected_seq, prev = 0, ""
    for row in _stream_events(conn, batch, chains):
        if row.chain != chain:
            if chain is not None and (fault := _check_head(chain, expected_seq, prev, heads)):
                return checked, fault
            chain, expected_seq, prev = row.chain, 0, genesis_hash(row.chain)
        expected_seq += 1
        fault = _check_event(row, expected_seq, prev)
        if fault is not None:
            return checked, fault
        prev = row.hash
        checked += 1
        if progress is not None and checked % batch == 0:
            progress(checked)
    if chain is not None and (fault := _check_head(chain, expected_seq, prev, heads)):
        return checked, fault
    seen = {r.chain for r in conn.execute(sa.select(events.c.chain).distinct()).all()}
    if chains is not None:
        seen &= set(chains)
    for name, (seq, _) in sorted(heads.items()):
        if name not in seen and seq != 0:
            return checked, ChainFault(name, 1, None, "链头记录存在，但该链的事件全部缺失")
    if progress is not None:
        progress(checked)
    return checked, None


def _stream_events(
    conn: Connection, batch: int, chains: Collection[str] | None = None
) -> Iterator[Any]:
    # Keyset pagination on (chain, seq): bounded memory on any database, any size.
    last_chain, last_seq = "", 0
    cols = events.c
    only = sa.true() if chains is None else cols.chain.in_(sorted(chains))
    while True:
        rows = conn.execute(
            sa.select(events)
            .where(
                only,
                sa.or_(
                    cols.chain > last_chain, sa.and_(cols.chain == last_chain, cols.seq > last_seq)
                ),
            )
            .order_by(cols.chain, cols.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_chain, last_seq = rows[-1].chain, rows[-1].seq


def _check_event(row: Any, expected_seq: int, prev: str) -> ChainFault | None:
    if row.seq != expected_seq:
        return ChainFault(
            row.chain,
            expected_seq,
            row.id,
            f"序号不连续：应为 {expected_seq}，实为 {row.seq}（有事件缺失）",
        )
    if row.prev_hash != prev:
        return ChainFault(row.chain, row.seq, row.id, "前一事件哈希不符（事件被删除或篡改）")
    digest = event_hash(
        chain=row.chain,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        role=row.role,
        community_id=row.community_id,
        project_id=row.project_id,
        type=row.type,
        data=row.data,
        prev_hash=row.prev_hash,
    )
    if digest != row.hash:
        return ChainFault(row.chain, row.seq, row.id, "事件内容与哈希不符（事件被篡改）")
    return None


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


def verify_ledger(conn: Connection, scope: Collection[str] | None = None) -> ChainFault | None:
    """Re-add every account (of the communities in ``scope``, if given) from its entries, and
    compare every column of every entry with the ``ledger.*`` event that recorded it."""
    e = ledger_entries.c

    def only(column: Any) -> Any:
        return sa.true() if scope is None else column.in_(sorted(scope))

    sums: dict[tuple[str, str, int], Balance] = defaultdict(lambda: _ZERO)
    by_project: dict[int, Balance] = defaultdict(lambda: _ZERO)
    recorded = _ledger_events(conn, only(events.c.community_id))
    for row in conn.execute(sa.select(ledger_entries).where(only(e.community_id)).order_by(e.id)):
        key = (row.community_id, row.fund, row.year)
        kind = ENTRY_KINDS.get(row.kind)
        if kind is None:
            return _ledger_fault(key, f"分录 {row.id} 的类型未知")
        totals = sums[key] = kind.apply(sums[key], row.amount_fen)
        if row.project_id is not None:
            by_project[row.project_id] = kind.apply(by_project[row.project_id], row.amount_fen)
        if totals != Balance(row.allocated_fen, row.reserved_fen, row.spent_fen):
            return _ledger_fault(key, f"分录 {row.id} 记载的余额与此前分录累计不符")
        event = recorded.pop(row.id, None)
        if event is None or event != tuple(getattr(row, c) for c in _ENTRY_AS_RECORDED):
            return _ledger_fault(key, f"分录 {row.id} 与历史中记录它的事件不符")
    if recorded:
        entry_id = min(recorded)
        return ChainFault("ledger", 0, None, f"历史中记录的分录 {entry_id} 在账本中缺失")
    accounts = set()
    for row in conn.execute(sa.select(fund_accounts).where(only(fund_accounts.c.community_id))):
        key = (row.community_id, row.fund, row.year)
        accounts.add(key)
        if key not in sums:
            return _ledger_fault(key, "账户没有任何分录（被人为添加）")
        if sums[key] != Balance(row.allocated_fen, row.reserved_fen, row.spent_fen):
            return _ledger_fault(key, "账户余额不等于其分录之和")
    if missing := sorted(set(sums) - accounts):
        return _ledger_fault(missing[0], "账户有分录，但账户记录缺失")
    for row in conn.execute(
        sa.select(projects.c.id, projects.c.reserved_fen, projects.c.spent_fen).where(
            only(projects.c.community_id)
        )
    ):
        if by_project.get(row.id, _ZERO) != Balance(0, row.reserved_fen, row.spent_fen):
            return ChainFault("ledger", 0, None, f"项目 {row.id} 的预留或支出金额与分录不符")
    return None


# An entry's columns, in the order ``_ledger_events`` reads them from its event.
_ENTRY_AS_RECORDED = (
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


def _ledger_events(conn: Connection, where: Any) -> dict[int, tuple[Any, ...]]:
    recorded = {}
    c = events.c
    rows = conn.execute(
        sa.select(c.type, c.data, c.project_id, c.community_id, c.at).where(
            c.type.in_(list(ENTRY_KIND_OF_EVENT)), where
        )
    )
    for row in rows:
        data = json.loads(row.data)
        kind = ENTRY_KIND_OF_EVENT[row.type].name
        recorded[data["entry_id"]] = (
            kind,
            data["amount_fen"],
            row.project_id,
            row.community_id,
            data["fund"],
            data["year"],
            data["cause_event_id"],
            row.at,
            data["allocated_fen"],
            data["reserved_fen"],
            data["spent_fen"],
        )
    return recorded


def _ledger_fault(key: tuple[str, str, int], reason: str) -> ChainFault:
    community_id, fund, year = key
    return ChainFault(f"ledger:{community_id}/{fund}/{year}", 0, None, reason)
