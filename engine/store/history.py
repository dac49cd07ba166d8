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
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.model import Actor
from engine.store.db import insert_ignore
from engine.store.statements import Prepared
from engine.store.tables import chain_heads, events

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


_LOCK_HEAD = Prepared(
    sa.select(chain_heads.c.seq, chain_heads.c.hash)
    .where(chain_heads.c.chain == sa.bindparam("chain"))
    .with_for_update()
)
_INSERT_EVENT = Prepared(sa.insert(events).returning(events.c.id))
_MOVE_HEAD = Prepared(sa.update(chain_heads).where(chain_heads.c.chain == sa.bindparam("head")))


class AppendedEvent(NamedTuple):
    """An event a change appended (what a webhook outbox row is made from)."""

    id: int
    chain: str
    type: str
    community_id: str | None
    project_id: int | None
    data: str


class ChainWriter:
    """Appends to one chain inside one transaction; the head row stays locked until commit."""

    def __init__(
        self,
        conn: Connection,
        chain: str,
        actor: Actor,
        at: datetime,
        head: tuple[int, str] | None = None,
        appended: list[AppendedEvent] | None = None,
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
        self._appended = [] if appended is None else appended

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
        self._appended.append(
            AppendedEvent(int(event_id), self.chain, type, community_id, project_id, text)
        )
        return int(event_id)

    @property
    def appended(self) -> tuple[str, int, int]:
        """(chain, seq before this change, last seq appended): what the outbox reads."""
        return self.chain, self._start_seq, self._seq

    def flush(self) -> None:
        """Move the head to the last appended event; call once, just before commit."""
        if self._seq != self._start_seq:
            _MOVE_HEAD.run(self._conn, {"head": self.chain, "seq": self._seq, "hash": self._hash})
