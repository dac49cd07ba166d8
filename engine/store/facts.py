"""Every fact table recomputed from the history events it came from, column by column.

The engine keeps the current state of things in ordinary tables — communities, projects,
demands, expenses, closed years (and the fund accounts, which ``verify_ledger`` re-adds from
their entries). Those rows must change (a project moves through its steps), so the database
cannot refuse every UPDATE on them as it does on ``events`` and ``ledger_entries``. Instead
``verify_facts`` rebuilds each row from its community's chain (closed years from the system
chain) and compares every column, so a single edited column of any row, a row removed or a
row added by hand is named as the first fault:

* a community from its ``community.created`` event (the name keys recomputed);
* a project from ``project.created``, its transitions (state, the fields each action last
  recorded, the budget), its latest 自治管理 follow-up (``project.self_managed``), its
  version (one per change that saved it) and updated time (its reserved and spent are
  ``verify_ledger``'s: against its entries, each against its event);
* a demand from ``demand.created``, ``demand.linked`` and ``demand.erased``; the resident's
  name and contact, which the history never holds, against the salted commitment the
  ``demand.created`` event carries (``engine.rules.personal``);
* an expense from ``expense.recorded`` (the payee's and invoice's keys recomputed);
* the closed years from ``year.closed`` and ``year.reopened`` on the system chain.

Events themselves are covered by their hashes; their ``id`` (a storage position, not hashed)
must at least grow along each chain.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import text
from engine.model import ENTRY_KIND_OF_EVENT, Balance
from engine.rules import personal
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import (
    api_tokens,
    chain_heads,
    closed_years,
    communities,
    demands,
    events,
    expenses,
    projects,
    users,
)
from engine.store.verify import ChainFault, LedgerEvents, verify_chains, verify_ledger
from engine.store.verify_read import (
    AT,
    CHAIN,
    COMMUNITY,
    DATA,
    EVENT_COLUMNS,
    ID,
    PROJECT,
    SEQ,
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

# Events after which the change saved the project row, so its version moved by one.
PROJECT_SAVES = frozenset(
    {
        "project.created",
        "project.transitioned",
        "project.year_closed",
        "project.year_reopened",
        "expense.recorded",
        "demand.created",
        "demand.linked",
        "project.self_managed",  # 自治管理 follow-ups (issue 12)
    }
)


@dataclass
class _Expected:
    """A row as its events say it must be, and the event that made it (for the fault)."""

    values: dict[str, Any]
    seq: int
    event_id: int
    extra: dict[str, Any] = field(default_factory=dict)


def verify_all(
    conn: Connection,
    scope: Collection[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, ChainFault | None]:
    """Chains, ledger and fact tables, in one snapshot: (events checked, first fault).

    The events are read once, chain by chain: as ``verify_chains`` finds each one sound it
    hands it on to the ledger's check (a ``ledger.*`` event) or to its community's replay
    (any other event of a community chain), and when a community's chain ends its fact rows
    are compared with the replay and the replay let go (so memory holds one community's
    rows, not the district's). A fault of the chains comes first, then the ledger's, then
    that of the first community by name: as if each check had run alone in that order."""
    with cyclic_gc_paused():
        return _verify_all(conn, scope, progress)


def _verify_all(
    conn: Connection, scope: Collection[str] | None, progress: Callable[[int], None] | None
) -> tuple[int, ChainFault | None]:
    recorded = LedgerEvents(scope)
    names = set(_communities(conn, scope))
    faults: dict[str, ChainFault] = {}
    reading: list[_Replay] = []  # the community chain being read, if any

    def finish() -> None:
        replay = reading.pop()
        if replay.chain in names:
            names.discard(replay.chain)
            if (fault := _check_community(conn, replay)) is not None:
                faults[replay.chain] = fault

    def visit(event: Any) -> None:
        if event[TYPE].startswith("ledger."):
            recorded.add(event)
            return
        chain = event[CHAIN]
        if reading and reading[0].chain != chain:
            finish()
        if not reading and chain != SYSTEM_CHAIN:
            reading.append(_Replay(chain))
        if reading:
            reading[0].apply_row(event)

    checked, fault = verify_chains(conn, progress=progress, chains=scope, visit=visit)
    if fault is not None:
        return checked, fault
    if reading:
        finish()
    if scope is not None:
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
        if (fault := _check_community(conn, _Replay(community))) is not None:
            faults[community] = fault
    if faults:
        return checked, faults[min(faults)]
    return checked, verify_system_facts(conn) if scope is None else None


def verify_facts(conn: Connection, scope: Collection[str] | None = None) -> ChainFault | None:
    """Recompute the fact tables of every community (those in ``scope`` only, if given) and,
    without a scope, the closed years and grants; the first fault or None."""
    for community in _communities(conn, scope):
        replay = _Replay(community)
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


def verify_system_facts(conn: Connection) -> ChainFault | None:
    """The district-wide facts, from the system chain: closed years, API tokens, web users."""
    return _check_closed_years(conn) or _check_grants(conn)


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


def _check_community(conn: Connection, replay: _Replay) -> ChainFault | None:
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
        fault = _compare(community, label, rows, getattr(replay, attribute), same)
        if fault is not None:
            return fault
    return None


def _compare_row(
    chain: str,
    label: str,
    row: Mapping[str, Any],
    expected: dict[Any, _Expected],
    same: Callable[[Mapping[str, Any], _Expected], str | None],
) -> ChainFault | None:
    want = expected.pop(row["id"], None)
    if want is None:
        reason = f"{label} {row['id']} 在历史中没有记录（被人为添加或改动）"
        return ChainFault(chain, 0, None, reason)
    column = same(row, want)
    if column is not None:
        reason = f"{label} {row['id']} 的 {column} 与历史记录不符"
        return ChainFault(chain, want.seq, want.event_id, reason)
    return None


# What the system chain's replay reads of an event (its hashes are verify_chains' business).
_REPLAYED = (
    events.c.id,
    events.c.seq,
    events.c.at,
    events.c.community_id,
    events.c.project_id,
    events.c.type,
    events.c.data,
)


def _compare(
    chain: str,
    label: str,
    actual: Iterable[Any],
    expected: dict[Any, _Expected],
    same: Callable[[Mapping[str, Any], _Expected], str | None],
) -> ChainFault | None:
    for row in actual:
        fault = _compare_row(chain, label, row, expected, same)
        if fault is not None:
            return fault
    if expected:
        row_id = min(expected)
        want = expected[row_id]
        return ChainFault(chain, want.seq, want.event_id, f"历史中记录的{label} {row_id} 已缺失")
    return None


def _first_difference(row: Any, values: Mapping[str, Any]) -> str | None:
    """The first of ``values``' columns whose value ``row`` does not hold, if any."""
    names = tuple(values)
    read = _READERS.get(names)
    if read is None:
        read = _READERS[names] = operator.itemgetter(*names) if len(names) > 1 else None
    if read is not None and read(row) == tuple(values.values()):
        return None  # every row of a sound history: one comparison of two tuples
    for name, value in values.items():
        if row[name] != value:
            return name
    return None


# Per set of column names compared, a reader of those columns as one tuple.
_READERS: dict[tuple[str, ...], Any] = {}


def _same_community(row: Mapping[str, Any], want: _Expected) -> str | None:
    return _first_difference(row, want.values)


def _same_project(row: Mapping[str, Any], want: _Expected) -> str | None:
    column = _first_difference(row, want.values)
    if column is not None:
        return column
    try:
        details = load_data(row["details"])
    except (TypeError, ValueError):
        return "details"
    return None if details == want.extra["details"] else "details"


def _same_demand(row: Mapping[str, Any], want: _Expected) -> str | None:
    column = _first_difference(row, want.values)
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


def _same_expense(row: Mapping[str, Any], want: _Expected) -> str | None:
    column = _first_difference(row, want.values)
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
_FACTS: list[tuple[sa.Table, str, str, Callable[[Mapping[str, Any], _Expected], str | None]]] = [
    (communities, "社区", "communities", _same_community),
    (projects, "项目", "projects", _same_project),
    (demands, "需求", "demands", _same_demand),
    (expenses, "支出", "expenses", _same_expense),
]


class _Replay:
    """One community's chain, event by event, into the rows it must have left."""

    def __init__(self, chain: str) -> None:
        self.chain = chain
        self.communities: dict[str, _Expected] = {}
        self.projects: dict[int, _Expected] = {}
        self.demands: dict[int, _Expected] = {}
        self.expenses: dict[int, _Expected] = {}
        self._money: dict[int, Balance] = {}
        self._last_id = 0
        self.fault: ChainFault | None = None

    def apply(self, event: Any) -> ChainFault | None:
        """Take one event (anything with an event's attributes); its fault, if any. Unlike
        ``apply_row``, later events are still taken after a fault."""
        self.fault = None
        self.apply_row(
            tuple(getattr(event, name, None) for name in EVENT_COLUMNS)  # no hashes needed
        )
        return self.fault

    def apply_row(self, event: Sequence[Any]) -> None:
        """Take one event as a tuple of ``verify_read.EVENT_COLUMNS``; after a fault, none."""
        if self.fault is not None:
            return
        event_id, seq = event[ID], event[SEQ]
        if event_id <= self._last_id:
            self.fault = ChainFault(self.chain, seq, event_id, "事件编号不随链上序号递增")
            return
        self._last_id = event_id
        try:
            self._apply(event, load_data(event[DATA]))
        except (KeyError, TypeError, ValueError, AttributeError):
            self.fault = ChainFault(self.chain, seq, event_id, "事件数据无法解读")

    def _apply(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        kind, project_id = event[TYPE], event[PROJECT]
        take = _TAKE.get(kind)
        if take is not None:
            take(self, event, data)
        elif (entry := ENTRY_KIND_OF_EVENT.get(kind)) is not None and project_id is not None:
            project = self.projects[project_id]
            money = entry.apply(
                Balance(0, project.values["reserved_fen"], project.values["spent_fen"]),
                data["amount_fen"],
            )
            project.values["reserved_fen"] = money.reserved_fen
            project.values["spent_fen"] = money.spent_fen
        if project_id is not None and kind in PROJECT_SAVES:
            values = self.projects[project_id].values
            values["version"] += 1
            values["updated_at"] = event[AT]

    def _community_created(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        self.communities[data["id"]] = _Expected(
            {
                "id": data["id"],
                "name": data["name"],
                # Cleaned: migration 0004 cleaned the names of communities made before it.
                "street": text.clean(data["street"]),
                "district": text.clean(data["district"]),
                "street_key": text.key(data["street"]),
                "district_key": text.key(data["district"]),
                "kind": data["kind"],
                "created_at": event[AT],
            },
            event[SEQ],
            event[ID],
        )

    def _project_created(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        at = event[AT]
        self.projects[event[PROJECT]] = _Expected(
            {
                "id": event[PROJECT],
                "community_id": event[COMMUNITY],
                "workflow": data["workflow"],
                "workflow_version": data["workflow_version"],
                "fund": data["fund"],
                "year": data["year"],
                "title": data["title"],
                "category": data["category"],
                # The menu library's item (issue 12); none before projects named one.
                "menu_item": data.get("menu_item"),
                "state": data["state"],
                "version": 0,  # counted in _apply, with every other save
                "budget_fen": None,
                "reserved_fen": 0,
                "spent_fen": 0,
                "created_at": at,
                "updated_at": at,
            },
            event[SEQ],
            event[ID],
            extra={"details": {}},
        )

    def _project_transitioned(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        project = self.projects[event[PROJECT]]
        project.values["state"] = data["to"]
        fields = data["fields"]
        project.extra["details"][data["action"]] = fields
        if "budget_fen" in fields:
            project.values["budget_fen"] = fields["budget_fen"]

    def _project_self_managed(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        # 自治管理: the latest follow-up, as recorded.
        self.projects[event[PROJECT]].extra["details"]["self_management"] = data

    def _demand_created(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        self.demands[data["demand_id"]] = _Expected(
            {
                "id": data["demand_id"],
                "community_id": event[COMMUNITY],
                "project_id": event[PROJECT],
                "content": data["content"],
                "source": data["source"],
                "created_at": event[AT],
                "erased_at": None,
            },
            event[SEQ],
            event[ID],
            extra={"personal": data.get("personal"), "has_contact": data["has_contact"]},
        )

    def _demand_linked(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        # A project's own events alone (as_of) hold a pooled demand's link, not its making.
        if (demand := self.demands.get(data["demand_id"])) is not None:
            demand.values["project_id"] = event[PROJECT]

    def _demand_erased(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        if (demand := self.demands.get(data["demand_id"])) is not None:
            demand.values["erased_at"] = event[AT]

    def _expense_recorded(self, event: Sequence[Any], data: dict[str, Any]) -> None:
        self.expenses[data["expense_id"]] = _Expected(
            {
                "id": data["expense_id"],
                "community_id": event[COMMUNITY],
                "project_id": event[PROJECT],
                "amount_fen": data["amount_fen"],
                "payee": data["payee"],
                "invoice_no": data["invoice_no"],
                "description": data["description"],
                "created_at": event[AT],
            },
            event[SEQ],
            event[ID],
        )


# What the replay takes from each kind of event (a ledger event moves a project's money).
_TAKE: dict[str, Callable[[_Replay, Sequence[Any], dict[str, Any]], None]] = {
    "community.created": _Replay._community_created,
    "project.created": _Replay._project_created,
    "project.transitioned": _Replay._project_transitioned,
    "project.self_managed": _Replay._project_self_managed,
    "demand.created": _Replay._demand_created,
    "demand.linked": _Replay._demand_linked,
    "demand.erased": _Replay._demand_erased,
    "expense.recorded": _Replay._expense_recorded,
}


def project_as_recorded(
    rows: Iterable[Any], project_id: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A project's row as its events (``rows``, in chain order) leave it: (columns, details),
    or None if they do not create it. What ``GET /projects/{id}?as_of=`` answers."""
    replay = _Replay("")
    for event in rows:
        replay.apply(event)
    found = replay.projects.get(project_id)
    if found is None:
        return None
    return dict(found.values), dict(found.extra["details"])


def _check_closed_years(conn: Connection) -> ChainFault | None:
    closed: dict[int, _Expected] = {}
    rows = conn.execute(
        sa.select(events)
        .where(events.c.chain == SYSTEM_CHAIN, events.c.type.in_(["year.closed", "year.reopened"]))
        .order_by(events.c.seq)
    )
    for event in rows:
        year = json.loads(event.data)["year"]
        if event.type == "year.closed":
            closed[year] = _Expected(
                {"year": year, "closed_at": event.at, "event_id": event.id},
                seq=event.seq,
                event_id=event.id,
            )
        else:
            closed.pop(year, None)
    actual = conn.execute(sa.select(closed_years).order_by(closed_years.c.year))
    for row in actual:
        want = closed.pop(row.year, None)
        if want is None:
            return ChainFault(SYSTEM_CHAIN, 0, None, f"{row.year} 年度的结账记录在历史中没有依据")
        column = _first_difference(row._mapping, want.values)
        if column is not None:
            return ChainFault(
                SYSTEM_CHAIN,
                want.seq,
                want.event_id,
                f"{row.year} 年度结账记录的 {column} 与历史记录不符",
            )
    if closed:
        year = min(closed)
        want = closed[year]
        reason = f"历史中已结账的 {year} 年度记录缺失"
        return ChainFault(SYSTEM_CHAIN, want.seq, want.event_id, reason)
    return None


def _check_grants(conn: Connection) -> ChainFault | None:
    """API tokens and web users against ``token.*`` and ``user.created`` on the system chain:
    name, role, scope and times (not the secrets' hashes, which the history never holds)."""
    tokens: dict[Any, _Expected] = {}
    people: dict[Any, _Expected] = {}
    rows = conn.execute(
        sa.select(*_REPLAYED)
        .where(
            events.c.chain == SYSTEM_CHAIN,
            events.c.type.in_(["token.created", "token.revoked", "user.created"]),
        )
        .order_by(events.c.seq)
    )
    for event in rows:
        data = json.loads(event.data)
        made = {"seq": event.seq, "event_id": event.id}
        grant = {k: data.get(k) for k in ("role", "communities", "streets")}
        if event.type == "token.created":
            values = {"id": data["token_id"], "name": data["name"], **grant}
            tokens[data["token_id"]] = _Expected(
                {**values, "created_at": event.at, "revoked_at": None}, **made
            )
        elif event.type == "token.revoked" and data["token_id"] in tokens:
            tokens[data["token_id"]].values["revoked_at"] = event.at
        elif event.type == "user.created":
            values = {"id": data["user_id"], "username": data["username"], **grant}
            people[data["user_id"]] = _Expected(
                {**values, "created_at": event.at, "disabled_at": None}, **made
            )
    fault = _compare(
        SYSTEM_CHAIN,
        "令牌",
        conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id)).mappings(),
        tokens,
        _same_grant,
    )
    if fault is not None:
        return fault
    people_rows = conn.execute(sa.select(users).order_by(users.c.id)).mappings()
    return _compare(SYSTEM_CHAIN, "用户", people_rows, people, _same_grant)


def _same_grant(row: Mapping[str, Any], want: _Expected) -> str | None:
    for name, value in want.values.items():
        found = row[name]
        if name in ("communities", "streets"):
            try:
                found = json.loads(found)
            except (TypeError, ValueError):
                return name
        if found != value:
            return name
    return None
