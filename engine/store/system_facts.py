"""The system chain's facts rebuilt from its events: closed years (``year.closed``,
``year.reopened``), API tokens (``token.*``) and web users (``user.created``) — names, roles,
scopes and times, never the secrets' hashes, which the history does not hold."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.expected import Expected, compare, first_difference
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import api_tokens, closed_years, events, users
from engine.store.verify import ChainFault


def verify_system_facts(conn: Connection) -> ChainFault | None:
    """The district-wide facts, from the system chain: closed years, API tokens, web users."""
    return _check_closed_years(conn) or _check_grants(conn)


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


def _check_closed_years(conn: Connection) -> ChainFault | None:
    closed: dict[int, Expected] = {}
    rows = conn.execute(
        sa.select(events)
        .where(events.c.chain == SYSTEM_CHAIN, events.c.type.in_(["year.closed", "year.reopened"]))
        .order_by(events.c.seq)
    )
    for event in rows:
        year = json.loads(event.data)["year"]
        if event.type == "year.closed":
            closed[year] = Expected(
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
        column = first_difference(row._mapping, want.values)
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
    tokens: dict[Any, Expected] = {}
    people: dict[Any, Expected] = {}
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
            tokens[data["token_id"]] = Expected(
                {**values, "created_at": event.at, "revoked_at": None}, **made
            )
        elif event.type == "token.revoked" and data["token_id"] in tokens:
            tokens[data["token_id"]].values["revoked_at"] = event.at
        elif event.type == "user.created":
            values = {"id": data["user_id"], "username": data["username"], **grant}
            people[data["user_id"]] = Expected(
                {**values, "created_at": event.at, "disabled_at": None}, **made
            )
    fault = compare(
        SYSTEM_CHAIN,
        "令牌",
        conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id)).mappings(),
        tokens,
        _same_grant,
    )
    if fault is not None:
        return fault
    people_rows = conn.execute(sa.select(users).order_by(users.c.id)).mappings()
    return compare(SYSTEM_CHAIN, "用户", people_rows, people, _same_grant)


def _same_grant(row: Mapping[str, Any], want: Expected) -> str | None:
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
