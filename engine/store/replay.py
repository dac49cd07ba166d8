"""A community's chain replayed, event by event, into the rows it must have left.

What ``verify`` compares a community's fact tables with (``engine.store.facts``) and what
``GET /projects/{id}?as_of=`` answers (``project_as_recorded``):

* a community from its ``community.created`` event (the name keys recomputed);
* a project from ``project.created``, its transitions (state, the fields each action last
  recorded, the budget), its latest 自治管理 follow-up (``project.self_managed``), its
  version (one per change that saved it) and updated time; its reserved and spent from its
  ledger events (``verify_ledger`` holds those against its entries);
* a demand from ``demand.created``, ``demand.linked`` and ``demand.erased``;
* an expense from ``expense.recorded``.

Events themselves are covered by their hashes; their ``id`` (a storage position, not hashed)
must at least grow along each chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from engine import text
from engine.model import ENTRY_KIND_OF_EVENT, Balance
from engine.store.expected import Expected
from engine.store.verify import ChainFault
from engine.store.verify_read import (
    AT,
    COMMUNITY,
    DATA,
    EVENT_COLUMNS,
    ID,
    PROJECT,
    SEQ,
    TYPE,
    load_data,
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


class Replay:
    """One community's chain, event by event, into the rows it must have left."""

    def __init__(self, chain: str) -> None:
        self.chain = chain
        self.communities: dict[str, Expected] = {}
        self.projects: dict[int, Expected] = {}
        self.demands: dict[int, Expected] = {}
        self.expenses: dict[int, Expected] = {}
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
        self.communities[data["id"]] = Expected(
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
        self.projects[event[PROJECT]] = Expected(
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
        self.demands[data["demand_id"]] = Expected(
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
        self.expenses[data["expense_id"]] = Expected(
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
_TAKE: dict[str, Callable[[Replay, Sequence[Any], dict[str, Any]], None]] = {
    "community.created": Replay._community_created,
    "project.created": Replay._project_created,
    "project.transitioned": Replay._project_transitioned,
    "project.self_managed": Replay._project_self_managed,
    "demand.created": Replay._demand_created,
    "demand.linked": Replay._demand_linked,
    "demand.erased": Replay._demand_erased,
    "expense.recorded": Replay._expense_recorded,
}


def project_as_recorded(
    rows: Iterable[Any], project_id: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A project's row as its events (``rows``, in chain order) leave it: (columns, details),
    or None if they do not create it. What ``GET /projects/{id}?as_of=`` answers."""
    replay = Replay("")
    for event in rows:
        replay.apply(event)
    found = replay.projects.get(project_id)
    if found is None:
        return None
    return dict(found.values), dict(found.extra["details"])
