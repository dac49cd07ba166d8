"""The webhook outbox: deliveries written in the change's own transaction (claimed and
recorded by the dispatcher through ``engine.store.dispatch``).

``enqueue`` is the one hook on the write path. A change calls it just before it commits,
with the span of events it appended to each chain: it reads the ``webhook_state`` row (one
primary-key read; with no active subscription that is all it costs, and a change to a
project does not even pay that: its lock statement read the count already), matches the events
against the active subscriptions (cached per process under the state's generation, which
every subscription change renews, so a change made by another process is seen at once) and
inserts one delivery per (event, subscription), with the message's body built there and
then. A change that rolls back takes its deliveries with it; one that commits has them.

"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.rules.webhooks import events as catalogue
from engine.rules.webhooks.summary import summarise
from engine.rules.workflow import WorkflowRegistry
from engine.store.statements import Prepared
from engine.store.tables import communities, events, projects
from engine.store.webhook_tables import (
    webhook_deliveries,
    webhook_state,
    webhook_subscriptions,
)

_s = webhook_subscriptions.c
_d = webhook_deliveries.c
_STATE = Prepared(
    sa.select(webhook_state.c.generation, webhook_state.c.active).where(webhook_state.c.id == 1)
)
_ACTIVE = sa.select(_s.id, _s.events, _s.community_id, _s.street).where(_s.disabled_at.is_(None))
_EVENTS = Prepared(
    sa.select(events).where(
        events.c.chain == sa.bindparam("chain"),
        events.c.seq > sa.bindparam("after"),
        events.c.seq <= sa.bindparam("last"),
    )
)
_COMMUNITY = Prepared(
    sa.select(communities.c.id, communities.c.name, communities.c.street).where(
        communities.c.id == sa.bindparam("community")
    )
)
_PROJECT = Prepared(sa.select(projects).where(projects.c.id == sa.bindparam("project")))
_INSERT = Prepared(sa.insert(webhook_deliveries))


@dataclass(frozen=True, slots=True)
class _Active:
    id: str
    patterns: tuple[str, ...]
    community_id: str | None
    street: str | None


class _Cache:
    """Active subscriptions per database, under the generation they were read at."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, tuple[int, list[_Active]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, conn: Connection, generation: int) -> list[_Active]:
        with self._lock:
            cached = self._by_engine.get(conn.engine)
        if cached is not None and cached[0] == generation:
            return cached[1]
        active = [
            _Active(r.id, tuple(json.loads(r.events)), r.community_id, r.street)
            for r in conn.execute(_ACTIVE)
        ]
        with self._lock:
            self._by_engine[conn.engine] = (generation, active)
        return active


_cache = _Cache()


def enqueue(
    conn: Connection,
    workflows: WorkflowRegistry,
    spans: Iterable[tuple[str, int, int]],
    *,
    active: int | None = None,
) -> int:
    """Outbox rows for the events a change appended (``(chain, after_seq, last_seq)`` each).

    ``active`` is how many subscriptions were active when the change took its locks, if a
    statement it sent anyway read that: 0 skips the hook's own read. A subscription
    committed while such a change runs does not receive that change's events — as with one
    committed just after the hook's own read; either way, subscribing takes effect for the
    changes that start after it. Answers how many deliveries it wrote.
    """
    if active == 0:
        return 0
    state = _STATE.first(conn, {})
    if state is None or state.active == 0:
        return 0
    subscribed = _cache.get(conn, state.generation)
    rows = [
        row
        for chain, after, last in spans
        if last > after
        for row in _EVENTS.all(conn, {"chain": chain, "after": after, "last": last})
    ]
    wanted = [
        (row, [s for s in subscribed if catalogue.matches(s.patterns, row.type)]) for row in rows
    ]
    wanted = [(row, subs) for row, subs in wanted if subs]
    if not wanted:
        return 0
    places = _communities(conn, {row.community_id for row, _ in wanted} - {None})
    held = _projects(conn, {row.project_id for row, _ in wanted} - {None})
    money: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        if row.type.startswith("ledger.") and row.project_id is not None:
            amount = json.loads(row.data).get("amount_fen")
            money.setdefault(row.project_id, []).append((row.type, int(amount)))
    deliveries = []
    for row, subs in wanted:
        community = places.get(row.community_id)
        subs = [
            s
            for s in subs
            if (s.community_id is None or s.community_id == row.community_id)
            and (s.street is None or (community is not None and community["street"] == s.street))
        ]
        if not subs:
            continue
        payload = _payload(row, community, held.get(row.project_id), workflows, money)
        for sub in subs:
            deliveries.append(
                {
                    "message_id": new_message_id(),
                    "subscription_id": sub.id,
                    "event_id": row.id,
                    "community_id": row.community_id,
                    "type": row.type,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": row.at,
                    "created_at": row.at,
                }
            )
    for delivery in deliveries:  # a change queues a few: one prepared insert each
        _INSERT.run(conn, delivery)
    return len(deliveries)


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _communities(conn: Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
    found = (_COMMUNITY.first(conn, {"community": i}) for i in sorted(ids))
    return {r.id: {"id": r.id, "name": r.name, "street": r.street} for r in found if r}


def _projects(conn: Connection, ids: set[int]) -> dict[int, Any]:
    found = (_PROJECT.first(conn, {"project": i}) for i in sorted(ids))
    return {r.id: r for r in found if r is not None}


def _payload(
    row: Any,
    community: dict[str, Any] | None,
    project_row: Any,
    workflows: WorkflowRegistry,
    money: dict[int, list[tuple[str, int]]],
) -> str:
    details = catalogue.details_of(row.type, row.data)
    project = None
    action_label = from_label = None
    if project_row is not None:
        wf = workflows.get(project_row.workflow, project_row.workflow_version)
        project = {
            "id": project_row.id,
            "community_id": project_row.community_id,
            "title": project_row.title,
            "workflow": project_row.workflow,
            "state": project_row.state,
            "state_label": wf.state_label(project_row.state),
            "budget_fen": project_row.budget_fen,
            "reserved_fen": project_row.reserved_fen,
            "spent_fen": project_row.spent_fen,
        }
        if row.type == "project.transitioned":
            action = wf.actions.get(str(details.get("action")))
            action_label = action.label if action is not None else None
            source = str(details.get("from"))
            from_label = wf.state_label(source) if source in wf.states else source
    at = row.at.isoformat().replace("+00:00", "Z")
    event = {
        "event_id": row.id,
        "chain": row.chain,
        "seq": row.seq,
        "hash": row.hash,
        "at": at,
        "community_id": row.community_id,
        "project_id": row.project_id,
        "summary": summarise(
            row.type,
            details,
            community=community,
            project=project,
            action_label=action_label,
            from_label=from_label,
            money=money.get(row.project_id, []) if row.type == "project.transitioned" else (),
        ),
    }
    return catalogue.body(
        event_type=row.type,
        timestamp=at,
        event=event,
        details=details,
        project=project,
        community=community,
    )
