"""The tamper-evident history: append-only events, sha256-chained per community.

Every change appends one or more events. Each event's hash covers its chain, position,
time, actor, role, community, project, type, data and the previous event's hash, so editing,
removing or reordering any event breaks every later link. The database refuses UPDATE and
DELETE on the table (triggers, see the migrations); ``verify`` catches what a privileged
hand could still do underneath.

Why one chain per community rather than one global chain: appending needs the previous
hash, so writers of one chain take turns. Each community (and the ``_system`` chain for
users, tokens and other district-wide changes) has its own head row; a writer locks only
that row (``SELECT … FOR UPDATE``), so committees in different communities never wait for
each other. The order of events across communities is their ``id``; within a chain it is
``seq``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.db import insert_ignore
from engine.statements import Prepared
from engine.tables import chain_heads, events

SYSTEM_CHAIN = "_system"


def canonical_json(value: Any) -> str:
    """The one serialisation used for hashing and storage: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def genesis_hash(chain: str) -> str:
    # Seeding each chain with its own name keeps a chain from being spliced onto another.
    return hashlib.sha256(f"zizhi:{chain}".encode()).hexdigest()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def event_hash(
    *,
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    role: str,
    community_id: str | None,
    project_id: int | None,
    type: str,
    data: str,
    prev_hash: str,
) -> str:
    payload = canonical_json(
        [chain, seq, iso(at), actor, role, community_id, project_id, type, data, prev_hash]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: ``token:<id>``, ``user:<name>``, ``cli`` or ``public``."""

    id: str
    role: str


_LOCK_HEAD = Prepared(
    sa.select(chain_heads.c.seq, chain_heads.c.hash)
    .where(chain_heads.c.chain == sa.bindparam("chain"))
    .with_for_update()
)
_INSERT_EVENT = Prepared(sa.insert(events).returning(events.c.id))
_MOVE_HEAD = Prepared(sa.update(chain_heads).where(chain_heads.c.chain == sa.bindparam("head")))


class ChainWriter:
    """Appends to one chain inside one transaction; the head row stays locked until commit."""

    def __init__(
        self,
        conn: Connection,
        chain: str,
        actor: Actor,
        at: datetime,
        head: tuple[int, str] | None = None,
    ) -> None:
        """Lock the chain's head row, unless the caller already locked it and passes ``head``."""
        self._conn = conn
        self.chain = chain
        self._actor = actor
        self._at = at
        if head is None:
            row = _LOCK_HEAD.first(conn, {"chain": chain})
            if row is None:  # a chain's first writer; ON CONFLICT lets a racing first one win
                conn.execute(
                    insert_ignore(conn.dialect.name, chain_heads),
                    {"chain": chain, "seq": 0, "hash": genesis_hash(chain)},
                )
                row = _LOCK_HEAD.one(conn, {"chain": chain})
            head = (row.seq, row.hash)
        self._seq, self._hash = head
        self._start_seq = self._seq

    def append(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        community_id: str | None = None,
        project_id: int | None = None,
    ) -> int:
        seq = self._seq + 1
        text = canonical_json(data)
        digest = event_hash(
            chain=self.chain,
            seq=seq,
            at=self._at,
            actor=self._actor.id,
            role=self._actor.role,
            community_id=community_id,
            project_id=project_id,
            type=type,
            data=text,
            prev_hash=self._hash,
        )
        event_id = _INSERT_EVENT.one(
            self._conn,
            {
                "chain": self.chain,
                "seq": seq,
                "at": self._at,
                "actor": self._actor.id,
                "role": self._actor.role,
                "community_id": community_id,
                "project_id": project_id,
                "type": type,
                "data": text,
                "prev_hash": self._hash,
                "hash": digest,
            },
        ).id
        self._seq, self._hash = seq, digest
        return int(event_id)

    @property
    def appended(self) -> tuple[str, int, int]:
        """(chain, seq before this change, last seq appended): what the outbox reads."""
        return self.chain, self._start_seq, self._seq

    def flush(self) -> None:
        """Move the head to the last appended event; call once, just before commit."""
        if self._seq != self._start_seq:
            _MOVE_HEAD.run(self._conn, {"head": self.chain, "seq": self._seq, "hash": self._hash})


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
    conn: Connection, *, batch: int = 2000, progress: Any = None
) -> tuple[int, ChainFault | None]:
    """Recompute every chain; return (events checked, first fault or None).

    ``progress``, if given, is called with the number of events checked so far.
    """
    heads = {row.chain: (row.seq, row.hash) for row in conn.execute(sa.select(chain_heads)).all()}
    checked = 0
    chain: str | None = None
    expected_seq, prev = 0, ""
    for row in _stream_events(conn, batch):
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
    for name, (seq, _) in sorted(heads.items()):
        if name not in seen and seq != 0:
            return checked, ChainFault(name, 1, None, "链头记录存在，但该链的事件全部缺失")
    if progress is not None:
        progress(checked)
    return checked, None


def _stream_events(conn: Connection, batch: int) -> Iterator[Any]:
    # Keyset pagination on (chain, seq): bounded memory on any database, any size.
    last_chain, last_seq = "", 0
    cols = events.c
    while True:
        rows = conn.execute(
            sa.select(events)
            .where(
                sa.or_(
                    cols.chain > last_chain, sa.and_(cols.chain == last_chain, cols.seq > last_seq)
                )
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
