"""Every fact table recomputed from the history events it came from, column by column.

The engine keeps the current state of things in ordinary tables — communities, projects,
demands, expenses, closed years (and the fund accounts, which ``verify_ledger`` re-adds from
their entries). Those rows must change (a project moves through its steps), so the database
cannot refuse every UPDATE on them as it does on ``events`` and ``ledger_entries``. Instead
``verify_all`` rebuilds each row from its community's chain (``engine.store.replay``; the
system chain's facts in ``engine.store.system_facts``) and compares every column
(``engine.store.expected``), so a single edited column of any row, a row removed or a row
added by hand is named as the first fault. What a row must satisfy beyond its replayed
columns is here: a project's details, a demand's name and contact against the salted
commitment its ``demand.created`` event carries (``engine.rules.personal``), an expense's
payee and invoice keys.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import text
from engine.model import ENTRY_KIND_OF_EVENT
from engine.rules import personal
from engine.store.expected import Expected, compare, first_difference
from engine.store.history import SYSTEM_CHAIN
from engine.store.replay import Replay
from engine.store.system_facts import verify_system_facts
from engine.store.tables import chain_heads, communities, demands, events, expenses, projects
from engine.store.verify import ChainFault, LedgerEvents, verify_chains, verify_ledger
from engine.store.verify_read import (
    CHAIN,
    COMMUNITY,
    ID,
    TYPE,
    SlowTimes,
    cyclic_gc_paused,
    event_rows,
    fix_row,
    load_data,
    raw_rows,
    selectable,
    time_positions,
)

# What a part of a split check says when it meets a ledger event recorded on a chain other
# than its community's (the engine records none): not a fault, a reason for the whole check.
MISPLACED = "记账事件不在其社区的链上"


def misplaced(event: Any) -> bool:
    """A ledger event (an ``EVENT_COLUMNS`` tuple) on a chain other than its community's."""
    return bool(event[TYPE].startswith("ledger.") and event[COMMUNITY] != event[CHAIN])


def verify_all(
    conn: Connection,
    scope: Collection[str] | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    part: bool = False,
) -> tuple[int, ChainFault | None]:
    """Chains, ledger and fact tables, in one snapshot: (events checked, first fault).

    The events are read once, chain by chain: as ``verify_chains`` finds each one sound it
    hands it on to the ledger's check (a ``ledger.*`` event) or to its community's replay
    (any other event of a community chain), and when a community's chain ends its fact rows
    are compared with the replay and the replay let go (so memory holds one community's
    rows, not the district's). A fault of the chains comes first, then the ledger's, then
    that of the first community by name: as if each check had run alone in that order.

    ``part``: ``scope`` is one part of a check whose parts together read every chain
    (``engine.store.verify_parallel``). A ledger event of the scope's communities recorded
    on another chain is then another part's to meet, so it is not looked for (a scan of the
    whole events table); a ledger event met on a chain not its community's (the engine
    records none) ends the part with a ``MISPLACED`` fault: the caller checks the whole
    history at once instead."""
    if conn.dialect.name == "postgresql":
        # Its plans are plain scans, run once each: compiling them (JIT) costs more than it
        # saves, a few hundred milliseconds of a million events' check.
        conn.exec_driver_sql("SET LOCAL jit = off")
    with cyclic_gc_paused():
        return _verify_all(conn, scope, progress, part)


def _verify_all(
    conn: Connection,
    scope: Collection[str] | None,
    progress: Callable[[int], None] | None,
    part: bool,
) -> tuple[int, ChainFault | None]:
    recorded = LedgerEvents(scope)
    names = set(_communities(conn, scope))
    faults: dict[str, ChainFault] = {}
    reading: list[Replay] = []  # the community chain being read, if any
    astray: list[int] = []  # ledger events on a chain not their community's

    def finish() -> None:
        replay = reading.pop()
        if replay.chain in names:
            names.discard(replay.chain)
            if (fault := _check_community(conn, replay)) is not None:
                faults[replay.chain] = fault

    def visit(event: Any) -> None:
        if event[TYPE].startswith("ledger."):
            if misplaced(event):
                astray.append(event[ID])
            recorded.add(event)
            return
        chain = event[CHAIN]
        if reading and reading[0].chain != chain:
            finish()
        if not reading and chain != SYSTEM_CHAIN:
            reading.append(Replay(chain))
        if reading:
            reading[0].apply_row(event)

    checked, fault = verify_chains(conn, progress=progress, chains=scope, visit=visit)
    if fault is not None:
        return checked, fault
    if reading:
        finish()
    if part and astray:
        return checked, ChainFault(SYSTEM_CHAIN, 0, astray[0], MISPLACED)
    if scope is not None and not part:
        # A scoped check read only its communities' chains; a ledger event of theirs
        # recorded on another chain would be an entry's only record all the same.
        elsewhere = sa.and_(
            events.c.type.in_(list(ENTRY_KIND_OF_EVENT)),
            events.c.community_id.in_(sorted(scope)),
            events.c.chain.not_in(sorted(scope)),
        )
        for event in event_rows(conn, elsewhere):
            recorded.add(event)
    fault = verify_ledger(conn, scope, recorded)
    if fault is not None:
        return checked, fault
    for community in names:  # rows of a community with no events of its own
        if (fault := _check_community(conn, Replay(community))) is not None:
            faults[community] = fault
    if faults:
        return checked, faults[min(faults)]
    return checked, verify_system_facts(conn) if scope is None else None


def verify_facts(conn: Connection, scope: Collection[str] | None = None) -> ChainFault | None:
    """Recompute the fact tables of every community (those in ``scope`` only, if given) and,
    without a scope, the closed years and grants; the first fault or None."""
    for community in _communities(conn, scope):
        replay = Replay(community)
        for event in event_rows(conn, events.c.chain == community):
            # Ledger events are verify_ledger's: it checks every entry against its event and
            # every project's reserved and spent against its entries.
            if not event[TYPE].startswith("ledger."):
                replay.apply_row(event)
        fault = _check_community(conn, replay)
        if fault is not None:
            return fault
    if scope is None:
        return verify_system_facts(conn)
    return None


def _communities(conn: Connection, scope: Collection[str] | None) -> list[str]:
    found: set[str] = set()
    found.update(conn.execute(sa.select(chain_heads.c.chain)).scalars())
    found.discard(SYSTEM_CHAIN)
    found.update(conn.execute(sa.select(communities.c.id)).scalars())
    for table in (projects, demands, expenses):
        found.update(conn.execute(sa.select(table.c.community_id).distinct()).scalars())
    if scope is not None:
        found &= set(scope)
    return sorted(found)


def _check_community(conn: Connection, replay: Replay) -> ChainFault | None:
    """The first fault of one community: its replay's, else its fact rows' against it."""
    if replay.fault is not None:
        return replay.fault
    community = replay.chain
    for project in replay.projects.values():  # those are verify_ledger's
        del project.values["reserved_fen"], project.values["spent_fen"]
    dialect = conn.dialect.name
    slow = SlowTimes(conn.dialect)
    for table, label, attribute, same in _FACTS:
        column = table.c.id if table is communities else table.c.community_id
        # Times as their iso text, as the replay holds them (engine.store.verify_read).
        statement = sa.select(*selectable(table, dialect)).where(column == community)
        columns = [c.name for c in table.columns]
        times = time_positions(table)
        rows = (
            dict(zip(columns, fix_row(values, times, slow), strict=True))
            for values in raw_rows(conn, statement.order_by(table.c.id))
        )
        fault = compare(community, label, rows, getattr(replay, attribute), same)
        if fault is not None:
            return fault
    return None


def _same_community(row: Mapping[str, Any], want: Expected) -> str | None:
    return first_difference(row, want.values)


def _same_project(row: Mapping[str, Any], want: Expected) -> str | None:
    column = first_difference(row, want.values)
    if column is not None:
        return column
    try:
        details = load_data(row["details"])
    except (TypeError, ValueError):
        return "details"
    return None if details == want.extra["details"] else "details"


def _same_demand(row: Mapping[str, Any], want: Expected) -> str | None:
    column = first_difference(row, want.values)
    if column is not None:
        return column
    if row["erased_at"] is not None:  # erased: nothing personal may be left
        for name in ("resident", "contact", "personal_salt"):
            if row[name] is not None:
                return name
        return None
    if row["resident"] is None:
        return "resident"
    committed = want.extra["personal"]
    if committed is None:  # recorded before the commitment existed: only what it said
        return None if (row["contact"] is not None) == want.extra["has_contact"] else "contact"
    if row["personal_salt"] is None:
        return "personal_salt"
    if personal.commitment(row["personal_salt"], row["resident"], row["contact"]) != committed:
        return "resident/contact/personal_salt"
    return None


def _same_expense(row: Mapping[str, Any], want: Expected) -> str | None:
    column = first_difference(row, want.values)
    if column is not None:
        return column
    if row["payee_key"] != text.key(row["payee"]):
        return "payee_key"
    invoice = text.key(row["invoice_no"])
    # Migration 0004 kept pre-existing duplicates apart by suffixing the expense's id.
    if row["invoice_key"] not in (invoice, f"{invoice}#{row['id']}"):
        return "invoice_key"
    return None


# A community's fact tables, in the order they are compared: the label a fault names, the
# replay's rows for the table, and what else each row must satisfy.
_FACTS: list[tuple[sa.Table, str, str, Callable[[Mapping[str, Any], Expected], str | None]]] = [
    (communities, "社区", "communities", _same_community),
    (projects, "项目", "projects", _same_project),
    (demands, "需求", "demands", _same_demand),
    (expenses, "支出", "expenses", _same_expense),
]
