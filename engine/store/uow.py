"""The engine's dependencies (``Zizhi``) and its one way into a change (``Change``).

A change is one write transaction. It rolls back unless committed, so state, ledger entries,
history events (and webhook outbox rows) are written together or not at all. Entering it
takes, in this order and nowhere else:

1. the reservation barrier (``reserving``), against closing a year;
2. the project's row (``project``), with its community's chain head in the same statement;
   or the community's chain head after checking the principal may see it (``community``);
   or a chain head by name (``chain``: the system chain, a community being created);
3. the Idempotency-Key's first answer, looked up under those locks, so a retried request
   sees its first answer and a concurrent duplicate waits for it (``change.replay``);
4. for a change to many projects (closing a year), their rows in id order
   (``change.lock_projects``), then their communities' chain heads (``change.also``).

A use case then writes its decision and its effects only: ``change.history`` appends
events, ``change.ledger`` moves money, ``change.save_project()`` writes the project row
(once), and ``change.commit(view)`` moves the chain heads and remembers the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.errors import IdempotencyConflict, NotFound
from engine.model import (
    PUBLIC,
    Actor,
    AllocationPolicy,
    IdempotencyKey,
    Principal,
    ProjectRecord,
    utc_now,
)
from engine.rules.workflow import WorkflowRegistry
from engine.store import outbox
from engine.store.db import Database
from engine.store.history import AppendedEvent, ChainWriter
from engine.store.ledger import Ledger
from engine.store.scope import visible_community
from engine.store.statements import Prepared
from engine.store.tables import chain_heads, communities, idempotency_keys, projects
from engine.store.webhook_tables import webhook_state

T = TypeVar("T")

_k = idempotency_keys.c
_LOOKUP = Prepared(
    sa.select(_k.request_hash, _k.result).where(
        _k.principal == sa.bindparam("principal"), _k.key == sa.bindparam("key")
    )
)
_REMEMBER = Prepared(sa.insert(idempotency_keys))
_RESERVATIONS = 0x7A7A5253  # the advisory lock key between reservations and closing a year
_BARRIER_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(:key)")
_BARRIER_EXCLUSIVE = sa.text("SELECT pg_advisory_xact_lock(:key)")

_p = projects.c


# A project's writer locks its row and its community's chain head in one statement (rows are
# locked in that order, as every writer does), and reads both fresh. The same statement reads
# how many webhook subscriptions are active, so that with none the outbox hook costs no
# round trip of its own (``outbox.enqueue``'s ``active``).
def lock_project(webhooks_active: sa.ColumnElement[Any]) -> Prepared:
    """The project's lock, reading ``webhooks_active`` beside it (a benchmark passes NULL to
    time the lock as it was before webhooks)."""
    return Prepared(
        sa.select(
            projects,
            communities.c.street,
            chain_heads.c.seq.label("head_seq"),
            chain_heads.c.hash.label("head_hash"),
            webhooks_active.label("webhooks_active"),
        )
        .join(communities, communities.c.id == _p.community_id)
        .join(chain_heads, chain_heads.c.chain == _p.community_id)
        .where(_p.id == sa.bindparam("project"))
        .with_for_update(of=[projects, chain_heads])
    )


LOCK_PROJECT = lock_project(
    sa.select(webhook_state.c.active).where(webhook_state.c.id == 1).scalar_subquery()
)
_SAVE_PROJECT = Prepared(
    sa.update(projects)
    .where(_p.id == sa.bindparam("project"), _p.version == sa.bindparam("expected"))
    .values(version=_p.version + 1)
    .returning(_p.version)
)

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[T]) -> TypeAdapter[T]:
    """Building a TypeAdapter is costly; one per answer type is enough."""
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return cast(TypeAdapter[T], _ADAPTERS[kind])


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
        # The read transaction a ``snapshot()`` holds open, in this thread or task.
        self._snapshot: ContextVar[Connection | None] = ContextVar(
            f"zizhi_snapshot_{id(self)}", default=None
        )
        # Token hash → (the revocation generation it was read at, its principal): see
        # engine.usecases.tokens.authenticate_token. Bounded; emptied when full.
        self.principals: dict[str, tuple[Any, Principal]] = {}

    def change(
        self,
        principal: Principal | Actor | None,
        idempotency: IdempotencyKey | None = None,
        *,
        project: int | None = None,
        community: str | None = None,
        chain: str | None = None,
        reserving: bool | Literal["exclusive"] = False,
    ) -> Change:
        """One write transaction by ``principal`` (None: a resident, the public; an ``Actor``:
        the system itself, e.g. the webhook dispatcher) on one chain: a ``project``'s
        community, a ``community`` the principal may see, or a ``chain``."""
        if (project is not None) + (community is not None) + (chain is not None) != 1:
            raise TypeError("a change writes to one of: project, community, chain")
        return Change(self, principal, idempotency, project, community, chain, reserving)

    def answered(self, idempotency: IdempotencyKey) -> bool:
        """Whether a change under this Idempotency-Key has already committed (a retry)."""
        with self.read() as conn:
            key = {"principal": idempotency.principal, "key": idempotency.key}
            return _LOOKUP.first(conn, key) is not None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for all its statements (inside a
        ``snapshot()``, that snapshot's)."""
        held = self._snapshot.get()
        if held is not None:
            yield held
            return
        with self.db.read() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every ``read()`` within shares one read transaction, so a page or a report made of
        several use cases (funds, projects, demands…) shows one moment, whatever writers do
        meanwhile. Writes (``change``) are not affected."""
        if self._snapshot.get() is not None:
            yield
            return
        with self.db.read() as conn:
            token = self._snapshot.set(conn)
            try:
                yield
            finally:
                self._snapshot.reset(token)


class Change:
    """One write transaction; see the module's docstring for what entering it takes."""

    conn: Connection
    at: datetime

    def __init__(
        self,
        zizhi: Zizhi,
        principal: Principal | Actor | None,
        idempotency: IdempotencyKey | None,
        project: int | None,
        community: str | None,
        chain: str | None,
        reserving: bool | Literal["exclusive"],
    ) -> None:
        self._zizhi = zizhi
        if isinstance(principal, Actor):  # the system acting, on a chain it names
            self.principal: Principal | None = None
            self.actor = principal
        else:
            self.principal = principal
            self.actor = principal.actor if principal is not None else PUBLIC
        self._idempotency = idempotency
        self._wants = (project, community, chain, reserving)
        self._stack = ExitStack()
        self._replay: str | None = None
        self._project: ProjectRecord | None = None
        self._community: sa.Row[Any] | None = None
        self._saved = False
        # How many webhook subscriptions were active when the locks were taken, where the
        # lock statement read it (None: the outbox hook reads it itself).
        self._webhooks_active: int | None = None
        self._others: dict[str, tuple[ChainWriter, Ledger]] = {}
        # Every event this change appends, on any chain, in order: what webhook outbox rows
        # are made from, in this same transaction.
        self.events: list[AppendedEvent] = []

    def __enter__(self) -> Change:
        self.conn = self._stack.enter_context(self._zizhi.db.write())
        self.at = self._zizhi.clock()
        try:
            self._take(*self._wants)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    def _take(
        self,
        project: int | None,
        community: str | None,
        chain: str | None,
        reserving: bool | Literal["exclusive"],
    ) -> None:
        """The barrier, the locks and the Idempotency-Key, in the one order every writer uses."""
        if reserving and not self._zizhi.db.is_sqlite:
            # Reservers hold the barrier shared (they never wait for each other); closing a
            # year holds it exclusively, so it waits for reservations in flight and keeps new
            # ones out until its release of the whole year is committed. SQLite has one
            # writer at a time, so there it is nothing.
            barrier = _BARRIER_EXCLUSIVE if reserving == "exclusive" else _BARRIER_SHARED
            self.conn.execute(barrier, {"key": _RESERVATIONS})
        head: tuple[int, str] | None = None
        if project is not None:
            row = LOCK_PROJECT.first(self.conn, {"project": project})
            if row is None or (
                self.principal is not None
                and not self.principal.covers(row.community_id, row.street)
            ):
                raise NotFound(f"项目 {project} 不存在")
            self._project = ProjectRecord.from_row(row)
            self._webhooks_active = row.webhooks_active
            chain, head = row.community_id, (row.head_seq, row.head_hash)
        elif community is not None:
            self._community = visible_community(self.conn, self.principal, community)
            chain = community
        assert chain is not None
        self.history = self._writer(chain, head)
        self.ledger = Ledger(self.conn, self.history, self._zizhi.policy, self.at)
        key = self._idempotency
        if key is not None:
            row = _LOOKUP.first(self.conn, {"principal": key.principal, "key": key.key})
            if row is not None:
                if row.request_hash != key.request_hash:
                    raise IdempotencyConflict(
                        "此 Idempotency-Key 已用于另一个不同的请求；请为新请求使用新的键"
                    )
                self._replay = row.result

    def _writer(self, chain: str, head: tuple[int, str] | None = None) -> ChainWriter:
        return ChainWriter(self.conn, chain, self.actor, self.at, head, self.events)

    def replay(self, kind: type[T]) -> T | None:
        """The first answer to this Idempotency-Key, if the request was already done."""
        if self._replay is None:
            return None
        return _adapter(kind).validate_json(self._replay)

    @property
    def community(self) -> sa.Row[Any]:
        """The community row this change checked and locked the chain of (``community=``)."""
        assert self._community is not None, "z.change(..., community=id) names a community"
        return self._community

    @property
    def project(self) -> ProjectRecord:
        """The project this change locked (``project=``)."""
        assert self._project is not None, "z.change(..., project=id) locks a project"
        return self._project

    def save_project(self) -> ProjectRecord:
        """Write the locked project back, once, bumping its version (the ETag clients send
        as If-Match); the record then holds what was written."""
        assert not self._saved, "a change writes its project row once"
        save_project(self, self.project)
        self._saved = True
        return self.project

    def lock_projects(self, where: sa.ColumnElement[bool]) -> list[ProjectRecord]:
        """Lock more projects' rows, in id order, for a change to many (closing or reopening
        a year): after this change's own chain, before the chains ``also`` adds. Each one
        written goes back through ``save_project``."""
        assert not self._others, "projects are locked before the chains they guard"
        statement = sa.select(projects).where(where).order_by(_p.id).with_for_update()
        return [ProjectRecord.from_row(r) for r in self.conn.execute(statement)]

    def also(self, chain: str) -> tuple[ChainWriter, Ledger]:
        """Another chain this change writes to (closing a year touches many communities).

        Lock such chains in a fixed order (sorted), after the rows they guard.
        """
        if chain not in self._others:
            writer = self._writer(chain)
            self._others[chain] = (writer, Ledger(self.conn, writer, self._zizhi.policy, self.at))
        return self._others[chain]

    def commit(self, result: object = None) -> None:
        """Move the chain heads, remember the answer for the Idempotency-Key, and commit."""
        assert self._project is None or self._saved, "a change to a project saves it"
        self.history.flush()
        for writer, _ in self._others.values():
            writer.flush()
        # Webhooks: this change's events into the outbox, in this same transaction.
        outbox.enqueue(
            self.conn,
            self._zizhi.workflows,
            [self.history.appended, *(w.appended for w, _ in self._others.values())],
            active=self._webhooks_active,
        )
        key = self._idempotency
        if key is not None and result is not None:
            try:
                _REMEMBER.run(
                    self.conn,
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


def save_project(change: Change, project: ProjectRecord) -> None:
    """The one write of a project's row in a change (a module function: tests pause it)."""
    row = _SAVE_PROJECT.one(
        change.conn,
        {
            "project": project.id,
            "expected": project.version,
            "state": project.state,
            "budget_fen": project.budget_fen,
            "reserved_fen": project.reserved_fen,
            "spent_fen": project.spent_fen,
            "details": json.dumps(project.details, ensure_ascii=False),
            "updated_at": change.at,
        },
    )
    project.version = row.version
    project.updated_at = change.at
