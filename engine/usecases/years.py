"""Closing a fiscal year: every open reservation of the year released, in one transaction.

After the close no money can be reserved in that year, its allocations no longer change, and
it takes no new projects or plans; what was spent stays spent. The close is one change: the
``year.closed`` event on the system chain, and, in each community's chain, a
``project.year_closed`` and a ``ledger.released`` event for every project that still held
money — or none of it.

A year can be closed only once it has ended in Asia/Shanghai (``force`` lets an operator close
it earlier; the CLI asks for the year twice). A close can be undone (``reopen_year``) as long
as none of the projects it released has changed since: the same projects get back the same
reservations, recorded as ``year.reopened``, ``project.year_reopened`` and ``ledger.reserved``.

Locks, in the order every writer takes them: the reservation barrier (exclusive, so
reservations in flight finish and new ones wait), the system chain, the projects' rows, the
communities' chains (sorted), the fund accounts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

import sqlalchemy as sa

from engine.errors import ActionNotAllowed, AlreadyExists, NotFound, ValidationFailed
from engine.model import IdempotencyKey, Principal, Role, check_year, fiscal_year
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import closed_years, events, ledger_entries, projects
from engine.store.uow import Zizhi, save_project

_p = projects.c
_STATUS = sa.select(closed_years).where(closed_years.c.year == sa.bindparam("year"))
_CLOSE_EVENT = sa.select(events.c.data).where(events.c.id == sa.bindparam("event"))
_e = ledger_entries.c
# What a close released: its release entries name the year.closed event as their cause.
_RELEASED = (
    sa.select(_e.project_id, _e.community_id, _e.fund, _e.amount_fen)
    .where(_e.event_id == sa.bindparam("cause"), _e.kind == "release")
    .order_by(_e.project_id)
)
# Anything that happened to those projects after the close, other than the close itself.
_CHANGED_SINCE = (
    sa.select(events.c.project_id)
    .where(
        events.c.project_id.in_(sa.bindparam("ids", expanding=True)),
        events.c.id > sa.bindparam("cause"),
        events.c.type.not_in(["project.year_closed", "ledger.released"]),
    )
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class YearView:
    year: int
    closed: bool
    closed_at: datetime | None = None
    projects_released: int = 0  # what the (latest) close released
    released_fen: int = 0
    projects_restored: int = 0  # what a reopen gave back (in the reopen's own answer only)
    restored_fen: int = 0


def close_year(
    z: Zizhi,
    principal: Principal,
    year: int,
    *,
    force: bool = False,
    idempotency: IdempotencyKey | None = None,
) -> YearView:
    """Close ``year``; refused before the year has ended in Asia/Shanghai unless ``force``."""
    principal.require(Role.admin)
    check_year(year)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN, reserving="exclusive") as change:
        if (done := change.replay(YearView)) is not None:
            return done
        if not force and fiscal_year(change.at) <= year:
            raise ValidationFailed.fields(
                {"year": f"{year} 年度尚未结束，北京时间 {year + 1} 年 1 月 1 日零时起才能结账"}
            )
        if change.conn.execute(_STATUS, {"year": year}).first() is not None:
            raise AlreadyExists(f"{year} 年度已经结账")
        held = change.lock_projects(sa.and_(_p.year == year, _p.reserved_fen > 0))
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


def reopen_year(
    z: Zizhi, principal: Principal, year: int, *, idempotency: IdempotencyKey | None = None
) -> YearView:
    """Undo a close: the projects it released get their reservations back.

    Refused (``action_not_allowed``) if any of those projects has changed since the close —
    then the close is no longer a mistake to undo but the ground later changes stand on.
    """
    principal.require(Role.admin)
    check_year(year)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN, reserving="exclusive") as change:
        if (done := change.replay(YearView)) is not None:
            return done
        closed = change.conn.execute(_STATUS, {"year": year}).first()
        if closed is None:
            raise NotFound(f"{year} 年度没有结账，无需撤销")
        released = change.conn.execute(_RELEASED, {"cause": closed.event_id}).all()
        ids = [r.project_id for r in released]
        held = {p.id: p for p in change.lock_projects(_p.id.in_(ids))} if ids else {}
        if ids and (
            moved := change.conn.execute(
                _CHANGED_SINCE, {"ids": ids, "cause": closed.event_id}
            ).first()
        ):
            raise ActionNotAllowed(
                f"结账后项目 {moved.project_id} 已有新的办理记录，{year} 年度结账不能再撤销"
            )
        restored = sum(r.amount_fen for r in released)
        cause = change.history.append(
            "year.reopened",
            {
                "year": year,
                "closed_event_id": closed.event_id,
                "projects": len(released),
                "reserved_fen": restored,
            },
        )
        change.conn.execute(sa.delete(closed_years).where(closed_years.c.year == year))
        by_community = groupby(
            sorted(released, key=lambda r: (r.community_id, r.project_id)),
            key=lambda r: r.community_id,
        )
        for community_id, rows in by_community:
            chain, ledger = change.also(community_id)
            for r in rows:
                chain.append(
                    "project.year_reopened",
                    {"year": year, "reserved_fen": r.amount_fen},
                    community_id=community_id,
                    project_id=r.project_id,
                )
                project = held[r.project_id]
                ledger.reserve(project, r.amount_fen, cause)
                save_project(change, project)
        view = YearView(
            year=year, closed=False, projects_restored=len(released), restored_fen=restored
        )
        change.commit(view)
    return view


def year_status(z: Zizhi, principal: Principal, year: int) -> YearView:
    """Whether the year is closed, and what its close released."""
    check_year(year)
    with z.read() as conn:
        row = conn.execute(_STATUS, {"year": year}).first()
        close = None if row is None else conn.execute(_CLOSE_EVENT, {"event": row.event_id}).one()
    if row is None or close is None:
        return YearView(year=year, closed=False)
    data = json.loads(close.data)
    return YearView(
        year=year,
        closed=True,
        closed_at=row.closed_at,
        projects_released=data["projects"],
        released_fen=data["released_fen"],
    )
