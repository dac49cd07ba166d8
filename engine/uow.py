"""The engine's dependencies (``Zizhi``) and its unit of work (``Change``).

A change is one write transaction on one history chain. It rolls back unless committed, so
state, ledger entries, history events and webhook outbox rows are written together
or not at all. ``lock(chain)`` takes the chain's head row first thing, which both orders the
chain and serialises every writer of that community; then the Idempotency-Key is looked up,
so a retried request sees its first answer, and a concurrent duplicate waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.db import Database
from engine.domain import utc_now
from engine.errors import IdempotencyConflict
from engine.history import Actor, ChainWriter
from engine.ledger import AllocationPolicy, Ledger
from engine.store import outbox
from engine.tables import idempotency_keys
from engine.workflow import WorkflowRegistry

T = TypeVar("T")

_k = idempotency_keys.c
_LOOKUP = sa.select(_k.request_hash, _k.result).where(
    _k.principal == sa.bindparam("principal"), _k.key == sa.bindparam("key")
)
_REMEMBER = sa.insert(idempotency_keys)
_RESERVATIONS = 0x7A7A5253  # the advisory lock key between reservations and closing a year
_BARRIER_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(:key)")
_BARRIER_EXCLUSIVE = sa.text("SELECT pg_advisory_xact_lock(:key)")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[T]) -> TypeAdapter[T]:
    """Building a TypeAdapter is costly; one per answer type is enough."""
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return cast(TypeAdapter[T], _ADAPTERS[kind])


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's Idempotency-Key, scoped to who sent it, and a digest of what was sent."""

    principal: str
    key: str
    request_hash: str


class Zizhi:
    """Everything a use case needs: the database, the workflows, the policy and the clock."""

    def __init__(
        self,
        db: Database,
        workflows: WorkflowRegistry,
        *,
        policy: AllocationPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.workflows = workflows
        self.policy = policy or AllocationPolicy()
        self.clock = clock

    def change(self, actor: Actor, idempotency: IdempotencyKey | None = None) -> Change:
        return Change(self, actor, idempotency)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.db.read() as conn:
            yield conn


class Change:
    def __init__(self, zizhi: Zizhi, actor: Actor, idempotency: IdempotencyKey | None) -> None:
        self._zizhi = zizhi
        self._actor = actor
        self._idempotency = idempotency
        self._stack = ExitStack()
        self._replay: str | None = None
        self._history: ChainWriter | None = None
        self._ledger: Ledger | None = None
        self._others: dict[str, tuple[ChainWriter, Ledger]] = {}

    def __enter__(self) -> Change:
        self.conn = self._stack.enter_context(self._zizhi.db.write())
        self.at = self._zizhi.clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    def lock(self, chain: str, head: tuple[int, str] | None = None) -> None:
        """Take the chain's head row (unless already locked: ``head``), then look the
        Idempotency-Key up under that lock."""
        self._history = ChainWriter(self.conn, chain, self._actor, self.at, head)
        self._ledger = Ledger(self.conn, self._history, self._zizhi.policy, self.at)
        key = self._idempotency
        if key is None:
            return
        row = self.conn.execute(_LOOKUP, {"principal": key.principal, "key": key.key}).first()
        if row is None:
            return
        if row.request_hash != key.request_hash:
            raise IdempotencyConflict(
                "此 Idempotency-Key 已用于另一个不同的请求；请为新请求使用新的键"
            )
        self._replay = row.result

    def hold_reservations(self, *, exclusive: bool = False) -> None:
        """The barrier between reserving money and closing a year; call before any lock.

        A change that may reserve holds it shared (reservers never wait for each other);
        closing a year holds it exclusively, so it waits for reservations in flight and
        keeps new ones out until its release of the whole year is committed. SQLite has
        one writer at a time, so there it is nothing.
        """
        if not self._zizhi.db.is_sqlite:
            self.conn.execute(
                _BARRIER_EXCLUSIVE if exclusive else _BARRIER_SHARED, {"key": _RESERVATIONS}
            )

    def also(self, chain: str) -> tuple[ChainWriter, Ledger]:
        """Another chain this change writes to (closing a year touches many communities).

        Lock such chains in a fixed order (sorted), after the rows they guard.
        """
        if chain not in self._others:
            writer = ChainWriter(self.conn, chain, self._actor, self.at)
            self._others[chain] = (writer, Ledger(self.conn, writer, self._zizhi.policy, self.at))
        return self._others[chain]

    @property
    def history(self) -> ChainWriter:
        assert self._history is not None, "lock(chain) first"
        return self._history

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "lock(chain) first"
        return self._ledger

    def replayed(self, kind: type[T]) -> T | None:
        """The first answer to this Idempotency-Key, if the request was already done."""
        if self._replay is None:
            return None
        return _adapter(kind).validate_json(self._replay)

    def commit(self, result: object = None) -> None:
        """Move the chain heads, remember the answer for the Idempotency-Key, and commit."""
        self.history.flush()
        for writer, _ in self._others.values():
            writer.flush()
        # Webhooks: this change's events into the outbox, in this same transaction.
        outbox.enqueue(
            self.conn,
            self._zizhi.workflows,
            [self.history.appended, *(w.appended for w, _ in self._others.values())],
        )
        key = self._idempotency
        if key is not None and result is not None:
            try:
                self.conn.execute(
                    _REMEMBER,
                    {
                        "principal": key.principal,
                        "key": key.key,
                        "request_hash": key.request_hash,
                        "result_kind": type(result).__name__,
                        "result": _adapter(type(result)).dump_json(result).decode(),
                        "created_at": self.at,
                    },
                )
            except IntegrityError:
                # Only a twin request on another chain can take the same key first.
                raise IdempotencyConflict("同一 Idempotency-Key 的另一请求已先完成") from None
        self.conn.commit()
