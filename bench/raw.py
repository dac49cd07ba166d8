"""The hand-written baseline: the same rows the engine writes, by plain DB-API calls.

Each method is one transaction issuing, in the same order, the statements the engine issues
for that action (see ``engine/usecases/projects.py``, ``engine/store/ledger.py``,
``engine/store/history.py``):
lock the project joined with its community and its chain head, append hash-chained events,
move the money with conditional updates, save the project with its version bump, move the
head, commit. Events are hashed here by hand exactly as ``engine.store.history`` does, so a
benchmark database verifies whole afterwards whichever side wrote each event.

What is left out is what makes the engine an engine: field validation, the state machine,
error messages, the view returned to the caller, SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg

import workflows
from engine.text import key

_PROJECT_COLUMNS = (
    "id, community_id, workflow, workflow_version, fund, year, title, category, "
    "state, version, budget_fen, reserved_fen, spent_fen, details, created_at, "
    "updated_at"
)
# Positions in a locked project row (rows stay plain tuples, as the drivers return them).
_ID, _COMMUNITY, _FUND, _YEAR, _STATE, _VERSION, _BUDGET = 0, 1, 4, 5, 8, 9, 10
_RESERVED, _SPENT, _DETAILS = 11, 12, 13
_HEAD_SEQ, _HEAD_HASH = 17, 18

_ACCOUNT = "community_id = ? AND fund = ? AND year = ?"
# The engine's statements for these three actions, written out as SQL text.
SQL = {
    # The project row and its community's chain head, locked and read in one statement.
    "lock_project": (
        "SELECT " + ", ".join("p." + c for c in _PROJECT_COLUMNS.split(", ")) + ", c.street, "
        "h.seq, h.hash FROM projects p JOIN communities c ON c.id = p.community_id "
        "JOIN chain_heads h ON h.chain = p.community_id WHERE p.id = ?"
    ),
    "insert_event": (
        "INSERT INTO events (chain, seq, at, actor, role, community_id, project_id, type, data, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
    ),
    "save_project": (
        "UPDATE projects SET state = ?, version = version + 1, budget_fen = ?, reserved_fen = ?, "
        "spent_fen = ?, details = ?, updated_at = ? WHERE id = ? AND version = ? RETURNING version"
    ),
    "move_head": "UPDATE chain_heads SET seq = ?, hash = ? WHERE chain = ?",
    # What the seven steps' conditions read (engine/usecases/projects.py, engine/store/ledger.py).
    "demand_count": "SELECT count(*) FROM demands WHERE project_id = ?",
    "balance": f"SELECT allocated_fen, reserved_fen, spent_fen FROM fund_accounts WHERE {_ACCOUNT}",
    "year_closed": "SELECT year FROM closed_years WHERE year = ?",
    # Issued only on a community-year's first use; bench/statement.py times it as a tiny read.
    "account_exists": f"SELECT 1 FROM fund_accounts WHERE {_ACCOUNT}",
    "reserve": (
        f"UPDATE fund_accounts SET reserved_fen = reserved_fen + ? WHERE {_ACCOUNT} "
        "AND allocated_fen - reserved_fen - spent_fen >= ? "
        "AND NOT EXISTS (SELECT 1 FROM closed_years WHERE year = ?) "
        "RETURNING allocated_fen, reserved_fen, spent_fen"
    ),
    "spend": (
        "UPDATE fund_accounts SET reserved_fen = reserved_fen - ?, spent_fen = spent_fen + ? "
        f"WHERE {_ACCOUNT} AND reserved_fen >= ? "
        "RETURNING allocated_fen, reserved_fen, spent_fen"
    ),
    "release": (
        "UPDATE fund_accounts SET reserved_fen = reserved_fen - ? "
        f"WHERE {_ACCOUNT} AND reserved_fen >= ? "
        "RETURNING allocated_fen, reserved_fen, spent_fen"
    ),
    "insert_entry": (
        "INSERT INTO ledger_entries (community_id, fund, year, kind, amount_fen, project_id, "
        "event_id, at, allocated_fen, reserved_fen, spent_fen) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
    ),
    "insert_expense": (
        "INSERT INTO expenses (community_id, project_id, amount_fen, payee, invoice_no, "
        "description, created_at, payee_key, invoice_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING "
        "RETURNING id, community_id, project_id, amount_fen, payee, invoice_no, description, "
        "created_at"
    ),
}
# PostgreSQL: psycopg's placeholders, and the row locks SQLite gets from BEGIN IMMEDIATE.
SQL_PG = {name: text.replace("?", "%s") for name, text in SQL.items()}
SQL_PG["lock_project"] += " FOR UPDATE OF p, h"
# Reserving holds the barrier against closing a year (engine/store/uow.py), shared; SQLite's one
# writer needs none.
SQL_PG["hold_reservations"] = "SELECT pg_advisory_xact_lock_shared(%s)"
_RESERVATIONS = 0x7A7A5253

_FINAL = frozenset({"completed", "rejected", "cancelled"})

# Where each action goes, read from the definition (the happy path's actions have one source).
_ACTIONS = workflows.load_registry().latest("self_governance").actions


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class RawWriter:
    """One connection, one actor; ``sqlite3`` or ``psycopg``, each used the plain way."""

    def __init__(
        self,
        conn: sqlite3.Connection | psycopg.Connection[Any],
        *,
        actor: str,
        role: str,
        communities: frozenset[str],
    ) -> None:
        self.conn = conn
        self._sqlite = isinstance(conn, sqlite3.Connection)
        self._actor = actor
        self._role = role
        self._communities = communities
        self._sql = SQL if self._sqlite else SQL_PG

    @classmethod
    def sqlite(cls, path: str, *, synchronous: str = "FULL", **kw: Any) -> RawWriter:
        # The engine's pragmas (engine/store/db.py): WAL, the given synchronous, foreign keys.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return cls(conn, **kw)

    @classmethod
    def postgresql(cls, url: str, **kw: Any) -> RawWriter:
        return cls(psycopg.connect(url), **kw)

    def close(self) -> None:
        self.conn.close()

    # --- the three actions measured -------------------------------------------------------

    def cancel(self, project_id: int, reason: str) -> int:
        """``cancel`` on a project with nothing reserved: one event, no ledger movement."""
        with _Tx(self) as tx:
            project = tx.lock(project_id)
            if project[_STATE] in _FINAL:
                raise ValueError("project already closed")
            fields = {"reason": reason}
            tx.append(
                "project.transitioned",
                {"action": "cancel", "from": project[_STATE], "to": "cancelled", "fields": fields},
                project,
            )
            return tx.save(project, "cancel", fields, state="cancelled")

    def step(self, project_id: int, action: str, fields: Mapping[str, Any]) -> int:
        """One step of the happy path, with the reads its conditions make and its money:
        ``submit_plan`` checks the budget against what is available and the year, ``approve``
        reserves (see ``approve``), ``close`` releases what is still reserved."""
        if action == "approve":
            return self.approve(project_id, fields)
        (source,), dest = _ACTIONS[action].sources, _ACTIONS[action].dest
        with _Tx(self) as tx:
            project = tx.lock(project_id)
            if project[_STATE] != source:
                raise ValueError(f"project is not in {source}")
            account = (project[_COMMUNITY], project[_FUND], project[_YEAR])
            budget = project[_BUDGET]
            if action == "close_collection" and tx.one("demand_count", (project_id,))[0] < 1:
                raise ValueError("no demands")
            if action == "submit_plan":
                budget = fields["budget_fen"]
                allocated, reserved, spent = tx.one("balance", account)
                if budget > allocated - reserved - spent:
                    raise ValueError("more than is available")
                if tx.one("year_closed", (project[_YEAR],)) is not None:
                    raise ValueError("year closed")
            cause = tx.append(
                "project.transitioned",
                {"action": action, "from": source, "to": dest, "fields": dict(fields)},
                project,
            )
            money = None
            if action == "close" and (amount := project[_RESERVED]) > 0:
                after = tx.one("release", (amount, *account, amount))
                if after is None:
                    raise ValueError("the ledger is broken")
                tx.entry(project, "release", "ledger.released", amount, after, cause)
                money = (0, project[_SPENT])
            return tx.save(project, action, fields, state=dest, money=money, budget=budget)

    def approve(self, project_id: int, votes: Mapping[str, int]) -> int:
        """``approve``: the vote's event, then reserve the budget (account, project, entry)."""
        with _Tx(self) as tx:
            if not self._sqlite:
                tx.one("hold_reservations", (_RESERVATIONS,))
            project = tx.lock(project_id)
            if project[_STATE] != "review":
                raise ValueError("project is not in review")
            size, attendees, votes_for = (
                votes["council_size"],
                votes["attendees"],
                votes["votes_for"],
            )
            if (
                votes_for + votes["votes_against"] + votes["abstentions"] != attendees
                or attendees > size
                or 3 * attendees < 2 * size
                or 2 * votes_for <= attendees
            ):
                raise ValueError("the vote does not pass")
            fields = dict(votes)
            cause = tx.append(
                "project.transitioned",
                {"action": "approve", "from": "review", "to": "implementation", "fields": fields},
                project,
            )
            amount = project[_BUDGET]
            account = (project[_COMMUNITY], project[_FUND], project[_YEAR])
            # One conditional update: enough money and the year not closed (engine/store/ledger.py).
            after = tx.one("reserve", (amount, *account, amount, project[_YEAR]))
            if after is None:
                raise ValueError("fund cap exceeded, year closed or account not opened")
            tx.entry(project, "reserve", "ledger.reserved", amount, after, cause)
            # The project's own money goes into its row with the rest, in the one save.
            money = (project[_RESERVED] + amount, project[_SPENT])
            return tx.save(project, "approve", fields, state="implementation", money=money)

    def expense(self, project_id: int, fields: Mapping[str, Any]) -> int:
        """An expense: its row and event, then move the money reserved → spent."""
        with _Tx(self) as tx:
            project = tx.lock(project_id)
            if project[_STATE] != "implementation":
                raise ValueError("expenses only during implementation")
            community = project[_COMMUNITY]
            amount = fields["amount_fen"]
            row = tx.one(
                "insert_expense",
                (
                    community,
                    project[_ID],
                    amount,
                    fields["payee"],
                    fields["invoice_no"],
                    fields["description"],
                    tx.at_param,
                    # The normal forms duplicates are found by (engine/text.py's rule).
                    key(fields["payee"]),
                    key(fields["invoice_no"]),
                ),
            )
            if row is None:  # ON CONFLICT: the invoice is recorded already
                raise ValueError("invoice already recorded")
            cause = tx.append("expense.recorded", {"expense_id": row[0], **fields}, project)
            if amount > project[_RESERVED]:  # the project's row is locked
                raise ValueError("more than the project has reserved")
            after = tx.one(
                "spend", (amount, amount, community, project[_FUND], project[_YEAR], amount)
            )
            if after is None:
                raise ValueError("the ledger is broken")
            tx.entry(project, "spend", "ledger.spent", amount, after, cause)
            money = (project[_RESERVED] - amount, project[_SPENT] + amount)
            return tx.save(project, None, None, state=project[_STATE], money=money)


class _Tx:
    """One write transaction: BEGIN IMMEDIATE on SQLite, rollback unless it reached commit."""

    def __init__(self, writer: RawWriter) -> None:
        self._w = writer
        self._conn = writer.conn
        self._sql = writer._sql
        self.at = datetime.now(UTC)
        # SQLAlchemy stores SQLite datetimes as naive UTC text in this exact format.
        self.at_param: Any = (
            self.at.replace(tzinfo=None).isoformat(" ", "microseconds")
            if writer._sqlite
            else self.at
        )
        self._at_iso = self.at.isoformat(timespec="microseconds")
        self._chain = ""
        self._seq = 0
        self._hash = ""

    def __enter__(self) -> _Tx:
        if self._w._sqlite:
            self._conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._conn.execute(self._sql["move_head"], (self._seq, self._hash, self._chain))
            if self._w._sqlite:
                self._conn.execute("COMMIT")
            else:
                self._conn.commit()
        elif self._w._sqlite:
            self._conn.execute("ROLLBACK")
        else:
            self._conn.rollback()

    def one(self, name: str, params: tuple[Any, ...]) -> Any:
        return self._conn.execute(self._sql[name], params).fetchone()

    def run(self, name: str, params: tuple[Any, ...]) -> None:
        self._conn.execute(self._sql[name], params)

    def lock(self, project_id: int) -> Any:
        """The project row (with its community's street) and its community's chain head."""
        project = self.one("lock_project", (project_id,))
        if project is None or project[_COMMUNITY] not in self._w._communities:
            raise LookupError(f"project {project_id} not found")
        self._chain = project[_COMMUNITY]
        self._seq, self._hash = project[_HEAD_SEQ], project[_HEAD_HASH]
        return project

    def append(self, type: str, data: Mapping[str, Any], project: Any) -> int:
        seq, text = self._seq + 1, canonical_json(data)
        community, project_id = project[_COMMUNITY], project[_ID]
        payload = canonical_json(
            [
                self._chain,
                seq,
                self._at_iso,
                self._w._actor,
                self._w._role,
                community,
                project_id,
                type,
                text,
                self._hash,
            ]
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        (event_id,) = self.one(
            "insert_event",
            (
                self._chain,
                seq,
                self.at_param,
                self._w._actor,
                self._w._role,
                community,
                project_id,
                type,
                text,
                self._hash,
                digest,
            ),
        )
        self._seq, self._hash = seq, digest
        return int(event_id)

    def entry(
        self,
        project: Any,
        kind: str,
        event_type: str,
        amount: int,
        after: tuple[int, int, int],
        cause: int,
    ) -> None:
        community, fund, year = project[_COMMUNITY], project[_FUND], project[_YEAR]
        (entry_id,) = self.one(
            "insert_entry",
            (community, fund, year, kind, amount, project[_ID], cause, self.at_param, *after),
        )
        allocated, reserved, spent = after
        self.append(
            event_type,
            {
                "entry_id": entry_id,
                "fund": fund,
                "year": year,
                "amount_fen": amount,
                "cause_event_id": cause,
                "allocated_fen": allocated,
                "reserved_fen": reserved,
                "spent_fen": spent,
            },
            project,
        )

    def save(
        self,
        project: Any,
        action: str | None,
        fields: Mapping[str, Any] | None,
        *,
        state: str,
        money: tuple[int, int] | None = None,
        budget: int | None = None,
    ) -> int:
        """Write the project back with its version bumped; the details JSON keeps each action."""
        details = json.loads(project[_DETAILS])
        if action is not None:
            details[action] = dict(fields or {})
        reserved, spent = money if money is not None else (project[_RESERVED], project[_SPENT])
        (version,) = self.one(
            "save_project",
            (
                state,
                project[_BUDGET] if budget is None else budget,
                reserved,
                spent,
                json.dumps(details, ensure_ascii=False),
                self.at_param,
                project[_ID],
                project[_VERSION],
            ),
        )
        return int(version)
