"""What auditors ask of the history: filtered events, a project's timeline, replay, verify.

``verify`` checks everything the database could have been made to lie about: every chain
link and hash, every ledger balance against the sum of its entries, every entry's running
balances, every project's money against its own entries, each entry against the ``ledger.*``
event that recorded it, and every column of every fact table (communities, projects,
demands, expenses, closed years) against the events it came from (``engine.store.facts``).
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import text
from engine.errors import Forbidden, ValidationFailed
from engine.model import ENTRY_KIND_OF_EVENT, Balance, Principal, Role
from engine.store import feed, merkle
from engine.store.facts import verify_all
from engine.store.pagination import Page, check_limit
from engine.store.replay import PROJECT_SAVES
from engine.store.scope import scope_clause, visible_project
from engine.store.tables import communities, events
from engine.store.uow import Zizhi
from engine.store.verify_parallel import PARALLEL_FROM, Helper, events_recorded, verify_in_two
from engine.store.verify_tree import verify_tree as _verify_tree
from engine.usecases.access_log import record_access

# Events that change the project record itself, and so bump its version.
_PROJECT_CHANGES = PROJECT_SAVES


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    chain: str
    seq: int
    at: datetime
    type: str
    actor: str
    role: str
    community_id: str | None
    project_id: int | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    community_id: str | None = None
    street: str | None = None
    project_id: int | None = None
    actor: str | None = None
    type: str | None = None  # exact, or a prefix ending in ".*" such as "ledger.*"
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        # Event types are lower-case ASCII identifiers: compared in the form people may type
        # them (" Ｌｅｄｇｅｒ.* " is "ledger.*"), and the same way on every database.
        if self.type is not None:
            object.__setattr__(self, "type", text.key(self.type) or None)

    @property
    def type_prefix(self) -> str | None:
        """What every matching type starts with, for a prefix filter such as ``ledger.*``."""
        if self.type is not None and self.type.endswith(".*"):
            return self.type[:-1]
        return None

    def clause(self, dialect: str) -> sa.ColumnElement[bool]:
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValidationFailed.fields(
                    {name: "时间必须带时区，例如 2026-03-01T00:00:00+08:00"}
                )
        e = events.c
        parts: list[sa.ColumnElement[bool]] = []
        if self.community_id is not None:
            parts.append(e.community_id == self.community_id)
        if self.street is not None:
            parts.append(
                e.community_id.in_(
                    sa.select(communities.c.id).where(
                        communities.c.street_key == text.key(self.street)
                    )
                )
            )
        if self.project_id is not None:
            parts.append(e.project_id == self.project_id)
        if self.actor is not None:
            parts.append(e.actor == self.actor)
        if self.type is not None and self.type_prefix is None:
            parts.append(e.type == self.type)
        at = feed.unindexed_at(dialect)
        if self.since is not None:
            parts.append(at >= self.since)
        if self.until is not None:
            parts.append(at < self.until)
        return sa.and_(sa.true(), *parts)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad: dict[str, Any] | None = None


def query_events(
    z: Zizhi,
    principal: Principal,
    where: EventFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[EventView]:
    """One page of the history events the principal may see, in feed order, filtered.

    Paging on ``next_cursor`` sees every event exactly once, however writers interleave
    (``engine.store.feed``)."""
    check_limit(limit)
    start = feed.decode_cursor(cursor)
    query = _scoped(z, principal, where)
    with z.read() as conn:
        rows = _rows(conn, query, where, start, limit + 1)
    if len(rows) > limit:
        rows = rows[:limit]
        page = Page([event_view(r) for r in rows], feed.encode_cursor(feed.key_of(rows[-1])))
    else:
        page = Page([event_view(r) for r in rows], None)
    asked = {**asdict(where), "limit": limit, "cursor": cursor}
    record_access(z, principal, "events", asked, len(page.items))
    return page


def stream_events(
    z: Zizhi, principal: Principal, where: EventFilter, *, batch: int = 1000
) -> Iterator[EventView]:
    """Every matching event in feed order, read in batches (for CSV and JSON Lines export).

    Access, filters and the first batch are done now, before the caller starts answering,
    so a refusal or a failing database is an error answer rather than a broken download.
    Every batch is read in the same snapshot (one read transaction, held until the last
    batch or until the caller closes the iterator), so an export is one moment of history.
    """
    base = _scoped(z, principal, where)
    stack = ExitStack()
    conn = stack.enter_context(z.read())

    def batch_after(after: feed.FeedKey) -> Sequence[Any]:
        return _rows(conn, base, where, after, batch)

    try:
        first = batch_after(feed.START)
    except BaseException:
        stack.close()
        raise
    if len(first) < batch:  # all of it already read: no transaction left open
        stack.close()

    def events_from(rows: Sequence[Any]) -> Iterator[EventView]:
        sent = 0
        try:
            with stack:
                while rows:
                    for row in rows:
                        yield event_view(row)
                        sent += 1
                    if len(rows) < batch:
                        return
                    rows = batch_after(feed.key_of(rows[-1]))
        finally:  # finished or abandoned: the rows actually handed out
            record_access(z, principal, "export", asdict(where), sent)

    return events_from(first)


def project_history(z: Zizhi, principal: Principal, project_id: int) -> list[EventView]:
    """Every event of one project, oldest first (its timeline)."""
    with z.read() as conn:
        visible_project(conn, principal, project_id)
        rows = conn.execute(
            sa.select(events).where(events.c.project_id == project_id).order_by(events.c.id)
        ).all()
    record_access(z, principal, "project_history", {"project_id": project_id}, len(rows))
    return [event_view(r) for r in rows]


def event_view(row: Any) -> EventView:
    """An ``events`` row as an ``EventView``, its data parsed."""
    fields = dict(row._mapping)
    fields.pop("xid", None)  # the feed's order, not part of the event
    return EventView(**{**fields, "data": json.loads(row.data)})


@dataclass(frozen=True, slots=True)
class ReplayedProject:
    state: str
    version: int
    budget_fen: int | None
    reserved_fen: int
    spent_fen: int


def replay_project(history: list[EventView]) -> ReplayedProject:
    """Rebuild a project's state and money from its events alone."""
    state, version, budget = "", 0, None
    money = Balance(0, 0, 0)
    for event in history:
        data = event.data
        if event.type in _PROJECT_CHANGES:
            version += 1
        if event.type == "project.created":
            state = data["state"]
        elif event.type == "project.transitioned":
            state = data["to"]
            budget = data["fields"].get("budget_fen", budget)
        elif (kind := ENTRY_KIND_OF_EVENT.get(event.type)) is not None:
            money = kind.apply(money, data["amount_fen"])
    return ReplayedProject(state, version, budget, money.reserved_fen, money.spent_fen)


def verify(
    z: Zizhi,
    principal: Principal,
    progress: Callable[[int], None] | None = None,
    *,
    parallel_from: int = PARALLEL_FROM,
    helper: Helper | None = None,
) -> VerifyReport:
    """Recompute the chains, re-add the ledger and rebuild every fact table from the history;
    the first fault, if any (auditors, admins).

    An auditor scoped to communities or streets verifies, and is told about, the chains,
    accounts and rows of those communities only; the district-wide system chain and the
    closed years are checked for the unrestricted.

    The whole history, from ``parallel_from`` events, is checked on two processes in one
    snapshot (``engine.store.verify_parallel``); the report is the one a single process makes.
    The second process is ``helper`` (``verify_helper``) if given, else one started for it.
    """
    principal.require(Role.auditor, Role.admin)
    if principal.unrestricted and events_recorded(z.db) >= parallel_from:
        checked, fault = verify_in_two(z.db, progress, helper)
    else:
        with z.read() as conn:
            scope: set[str] | None = None
            if not principal.unrestricted:
                where = scope_clause(principal)
                scope = set(conn.execute(sa.select(communities.c.id).where(where)).scalars())
            checked, fault = verify_all(conn, scope, progress)
    record_access(z, principal, "verify", {"ok": fault is None}, checked)
    return VerifyReport(
        ok=fault is None, checked=checked, first_bad=None if fault is None else fault.as_dict()
    )


@dataclass(frozen=True, slots=True)
class TreeReport:
    ok: bool
    leaves: int  # leaves checked: the tree's size when all is well
    first_bad: dict[str, Any] | None = None  # {table, row, reason}


def verify_tree(
    z: Zizhi, principal: Principal, progress: Callable[[int], None] | None = None
) -> TreeReport:
    """Rebuild the Merkle tree's stored rows — leaves, nodes, time blocks — from the events,
    in one snapshot; the first row that differs, is missing or is left over (auditors and
    admins of the whole district: the tree spans every community)."""
    principal.require(Role.auditor, Role.admin)
    if not principal.unrestricted:
        raise Forbidden("Merkle 树覆盖全区的历史，只有不限范围的审计员或管理员可以校验")
    with z.read() as conn:
        leaves, fault = _verify_tree(conn, progress)
    record_access(z, principal, "verify_tree", {"ok": fault is None}, leaves)
    return TreeReport(
        ok=fault is None, leaves=leaves, first_bad=None if fault is None else fault.as_dict()
    )


@contextmanager
def verify_helper() -> Iterator[Helper | None]:
    """The second process of a two-process ``verify``, forked now so that it is ready when
    needed instead of importing for a second or more then. Enter it while this process is
    single-threaded and has no database connection (the command line, before it opens the
    database); where forking is not safe it is None and ``verify`` starts one itself."""
    helper = Helper.fork()
    try:
        yield helper
    finally:
        if helper is not None:
            helper.close()


# --- internals ---------------------------------------------------------------------------------


def _rows(
    conn: sa.Connection, query: sa.Select[Any], where: EventFilter, after: feed.FeedKey, n: int
) -> list[Any]:
    """Up to ``n`` rows of ``query`` after ``after`` in feed order. The feed is not in time
    order, so ``since=`` or ``until=`` alone would read all of it after the cursor; the
    Merkle tree's blocks say which stretches may hold events of that span of time
    (``merkle.time_ranges``), and only those are read."""
    prefix = where.type_prefix
    kinds = (
        None if prefix is None else [t for t in feed.types_present(conn) if t.startswith(prefix)]
    )
    if where.since is None and where.until is None:
        return _typed_rows(conn, query, kinds, after, n, None)
    rows: list[Any] = []
    for low, high in merkle.time_ranges(conn, where.since, where.until, after):
        if high is not None and high <= after:
            continue
        rows += _typed_rows(conn, query, kinds, max(low, after), n - len(rows), high)
        if len(rows) >= n:
            break
    return rows


def _typed_rows(
    conn: sa.Connection,
    query: sa.Select[Any],
    kinds: list[str] | None,
    after: feed.FeedKey,
    n: int,
    up_to: feed.FeedKey | None,
) -> list[Any]:
    """``feed.rows_after``, with a type prefix read as the types it covers (``kinds``, None
    without a prefix), each down its own index in feed order, and merged. Read as one
    condition, a prefix that matches little (``year.*``) walked the whole feed after the
    cursor for a page: 150 ms at a million events. Now a page reads at most ``n`` rows of
    each type the history holds under it."""
    if kinds is None:
        return feed.rows_after(conn, query, after, n, up_to=up_to)
    runs = [
        feed.rows_after(conn, query.where(events.c.type == kind), after, n, up_to=up_to)
        for kind in kinds
    ]
    return list(itertools.islice(heapq.merge(*runs, key=feed.key_of), n))


def _scoped(z: Zizhi, principal: Principal, where: EventFilter) -> sa.Select[Any]:
    principal.require(Role.auditor, Role.admin, Role.street)
    query = sa.select(events).where(where.clause(z.db.engine.dialect.name))
    if not principal.unrestricted:
        # Events of communities in scope; district-wide (_system) events are not theirs.
        query = query.where(
            events.c.community_id.in_(sa.select(communities.c.id).where(scope_clause(principal)))
        )
    return query
