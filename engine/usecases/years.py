"""Closing a fiscal year: every open reservation of the year released, in one transaction.

After the close no money can be reserved in that year and its allocations no longer change;
what was spent stays spent. The close is one change: the ``year.closed`` event on the system
chain, and, in each community's chain, a ``project.year_closed`` and a ``ledger.released``
event for every project that still held money — or none of it.

Locks, in the order every writer takes them: the reservation barrier (exclusive, so
reservations in flight finish and new ones wait), the system chain, the projects' rows, the
communities' chains (sorted), the fund accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

import sqlalchemy as sa

from engine.errors import AlreadyExists
from engine.model import IdempotencyKey, Principal, ProjectRecord, Role, check_year
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import closed_years, projects
from engine.store.uow import Zizhi, save_project

_p = projects.c
_OPEN = (
    sa.select(projects)
    .where(_p.year == sa.bindparam("year"), _p.reserved_fen > 0)
    .order_by(_p.id)
    .with_for_update()
)
_STATUS = sa.select(closed_years).where(closed_years.c.year == sa.bindparam("year"))


@dataclass(frozen=True, slots=True)
class YearView:
    year: int
    closed: bool
    closed_at: datetime | None = None
    projects_released: int = 0  # in the close itself; 0 when only reading the status
    released_fen: int = 0


def close_year(
    z: Zizhi, principal: Principal, year: int, *, idempotency: IdempotencyKey | None = None
) -> YearView:
    """Close a fiscal year (admin): release every open reservation, refuse new ones."""
    principal.require(Role.admin)
    check_year(year)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN, reserving="exclusive") as change:
        if (done := change.replay(YearView)) is not None:
            return done
        if change.conn.execute(_STATUS, {"year": year}).first() is not None:
            raise AlreadyExists(f"{year} 年度已经结账")
        held = [ProjectRecord.from_row(r) for r in change.conn.execute(_OPEN, {"year": year})]
        released_fen = sum(p.reserved_fen for p in held)
        cause = change.history.append(
            "year.closed", {"year": year, "projects": len(held), "released_fen": released_fen}
        )
        change.conn.execute(
            sa.insert(closed_years).values(year=year, closed_at=change.at, event_id=cause)
        )
        by_community = groupby(
            sorted(held, key=lambda p: (p.community_id, p.id)), key=lambda p: p.community_id
        )
        for community_id, rows in by_community:
            chain, ledger = change.also(community_id)
            for p in rows:
                chain.append(
                    "project.year_closed",
                    {"year": year, "released_fen": p.reserved_fen},
                    community_id=community_id,
                    project_id=p.id,
                )
                ledger.release(p, cause)
                save_project(change, p)
        view = YearView(
            year=year,
            closed=True,
            closed_at=change.at,
            projects_released=len(held),
            released_fen=released_fen,
        )
        change.commit(view)
    return view


def year_status(z: Zizhi, principal: Principal, year: int) -> YearView:
    """Whether a fiscal year is closed, and when."""
    check_year(year)
    with z.read() as conn:
        row = conn.execute(_STATUS, {"year": year}).first()
    if row is None:
        return YearView(year=year, closed=False)
    return YearView(year=year, closed=True, closed_at=row.closed_at)
