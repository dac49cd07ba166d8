"""A realistic history of any size, built through the engine's own write path.

    from bench.history_builder import build_history
    report = build_history(url, events=1_000_000, communities=[...], processes=2)

Every event is written by the use cases a committee, a street officer and residents call
(``engine.open_project``, ``add_to_project``, ``record_demand``, ``fire``,
``record_expense``), so the rows, hashes, ledger entries and fact tables are exactly the
engine's and ``engine.verify`` answers ok. Each community runs many projects at once, each
through its own lifecycle — demands collected (from the pool or typed in), screening (some
rejected), a plan (some sent back for revision), the council's vote (reserving the budget),
a few expenses (each ``expense.recorded`` + ``ledger.spent``), sometimes rectification or a
street officer's cancellation (releasing what is left), evaluation and closing (releasing
the rest) — and one step of a random running project is taken at a time, so a project's
events are spread through its community's chain as they would be over months. Residents
also leave demands in the pool that no project takes.

The clock is simulated: events are spread evenly from early in the fiscal year to now, so
``since=`` and ``until=`` filters select a part of the history, as they would on a real one.

Durability is off while building (SQLite ``synchronous=OFF``; PostgreSQL
``synchronous_commit=off``): what is built is not what is measured. On PostgreSQL several
processes may build at once, each writing its own communities (a chain has one writer at a
time anyway); SQLite has one writer, so it builds in one process.

The communities must exist with a large enough allocation first (``bench.common.open_site``
makes them so).
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

import engine
import workflows
from engine import Database, FundCapExceeded, Principal, Role, Zizhi
from engine.model import FISCAL_TZ, utc_now
from engine.store.tables import chain_heads, events

VOTE = {"council_size": 9, "attendees": 7, "votes_for": 6, "votes_against": 1, "abstentions": 0}
RUNNING = 40  # projects under way at once in each process
STREET = "金阊街道"  # open_site's communities' street
PAYEES = ["保洁公司", "物业公司", "绿化公司", "五金店", "印刷厂", "电器维修部", "搬家公司"]
TITLES = ["楼道照明改造", "小区绿化补植", "健身器材维修", "非机动车棚修缮", "垃圾分类宣传"]
Step = Callable[[], object]


@dataclass(frozen=True, slots=True)
class BuildReport:
    events: int  # events in the database afterwards (every chain)
    built: int  # of which this call wrote
    projects: int  # this call opened
    seconds: float

    @property
    def rate(self) -> float:
        return self.built / self.seconds if self.seconds else 0.0


class SimulatedClock:
    """``start``, then ``step`` later at every call: time passes with every write."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def build_history(
    url: str,
    events: int,
    communities: Sequence[str],
    *,
    processes: int = 1,
    seed: int = 11,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Grow the history of ``communities`` until the database holds about ``events`` events
    (a few dozen more: the last projects finish their step). ``processes`` > 1 only on
    PostgreSQL: the communities are dealt out among them."""
    if url.startswith("sqlite"):
        processes = 1
    start = time.perf_counter()
    have = _count(url)
    wanted = max(events - have, 0)
    first, last = _span(url)
    groups = [list(communities[i::processes]) for i in range(processes)]
    shares = [wanted * len(g) // len(communities) for g in groups]
    jobs = [
        (url, group, share, first, last, seed + i, progress if processes == 1 else None)
        for i, (group, share) in enumerate(zip(groups, shares, strict=True))
    ]
    if processes == 1:
        projects = [_build_part(*jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            projects = pool.starmap(_build_part, [job[:-1] + (None,) for job in jobs])
    now = _count(url)
    return BuildReport(now, now - have, sum(projects), time.perf_counter() - start)


def _span(url: str) -> tuple[datetime, datetime]:
    """From the 10th of January of this fiscal year (or the last 300 days, if the year is
    younger) to an hour ago; a history grown further continues from its latest event."""
    now = utc_now()
    last = now - timedelta(hours=1)
    year_start = datetime(now.astimezone(FISCAL_TZ).year, 1, 10, tzinfo=FISCAL_TZ)
    first = max(year_start, now - timedelta(days=300))
    db = _database(url)
    try:
        with db.engine.connect() as conn:
            latest = conn.execute(
                sa.select(sa.func.max(events.c.at)).where(events.c.at < last)
            ).scalar()
    finally:
        db.dispose()
    if latest is not None and latest > first:
        first = latest
    if last - first < timedelta(days=1):
        first = last - timedelta(days=1)
    return first, last


def _count(url: str) -> int:
    db = _database(url)
    try:
        with db.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(chain_heads.c.seq), 0))
                ).scalar_one()
            )
    finally:
        db.dispose()


def _database(url: str) -> Database:
    if url.startswith("sqlite"):
        return Database(url, sqlite_synchronous="OFF", pool_size=1)
    db = Database(url, pool_size=1)
    sa.event.listen(db.engine, "connect", _no_synchronous_commit)
    return db


def _no_synchronous_commit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("SET synchronous_commit = off")
    dbapi_conn.commit()


def _build_part(
    url: str,
    group: list[str],
    share: int,
    first: datetime,
    last: datetime,
    seed: int,
    progress: Callable[[str], None] | None,
) -> int:
    """One process's communities grown by ``share`` events; how many projects it opened."""
    db = _database(url)
    # About 1.3 clock readings per event (a transaction reads it once or twice).
    clock = SimulatedClock(first, (last - first) / max(int(share * 1.3), 1))
    z = Zizhi(db, workflows.load_registry(), clock=clock)
    builder = _Builder(z, group, random.Random(seed))
    try:
        builder.grow(share, progress)
    finally:
        db.dispose()
    return builder.opened


class _Builder:
    def __init__(self, z: Zizhi, communities: list[str], rng: random.Random) -> None:
        self.z, self.communities, self.rng = z, communities, rng
        self.committees = {
            c: Principal(
                id=f"token:committee-{c}",
                name=f"{c}居委会",
                role=Role.committee,
                communities=frozenset({c}),
            )
            for c in communities
        }
        self.street = Principal(
            id="token:street-jinchang", name="街道", role=Role.street, streets=frozenset({STREET})
        )
        self.opened = 0
        self.invoices = 0
        self.pool: dict[str, list[int]] = {c: [] for c in communities}

    def grow(self, share: int, progress: Callable[[str], None] | None) -> None:
        base = self._written()
        running: list[Iterator[None]] = []
        started, steps = time.perf_counter(), 0
        while True:
            while len(running) < RUNNING:
                running.append(self._lifecycle(self.rng.choice(self.communities)))
            i = self.rng.randrange(len(running))
            if next(running[i], StopIteration) is StopIteration:
                running[i] = running[-1]
                running.pop()
            steps += 1
            if self.rng.random() < 0.05:  # a resident's demand left in the pool
                c = self.rng.choice(self.communities)
                demand = engine.record_demand(self.z, None, c, self._demand())
                self.pool[c].append(demand.id)
            if steps % 500 == 0:
                done = self._written() - base
                if progress is not None:
                    rate = done / (time.perf_counter() - started)
                    progress(f"  {done:,} of {share:,} events ({rate:,.0f}/s)")
                if done >= share:
                    return

    def _written(self) -> int:
        with self.z.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(chain_heads.c.seq), 0)).where(
                        chain_heads.c.chain.in_(self.communities)
                    )
                ).scalar_one()
            )

    def _lifecycle(self, community: str) -> Iterator[None]:
        """One project from its opening to its end, one write per step."""
        z, rng, committee = self.z, self.rng, self.committees[community]
        project = engine.open_project(
            z,
            committee,
            community_id=community,
            workflow="self_governance",
            title=rng.choice(TITLES),
            category="居民自治类",
        ).id
        self.opened += 1
        yield

        def fire(action: str, data: dict[str, Any], who: Principal = committee) -> None:
            engine.fire(z, who, project, action, data)

        for _ in range(rng.randint(1, 4)):
            pool = self.pool[community]
            if pool and rng.random() < 0.4:
                engine.add_to_project(z, committee, project, {"demand_id": pool.pop()})
            else:
                engine.add_to_project(z, committee, project, self._demand())
            yield
        fire("close_collection", {})
        yield
        if rng.random() < 0.06:
            fire("reject", {"reason": "不属于自治项目范围"})
            return
        fire("accept", {"note": "同意立项"})
        yield
        # ¥200–4,000, less when the year's fund runs low (a long history spends it).
        funds = engine.funds(z, committee, community)
        fund = next(f for f in funds if f.fund == "self_governance")
        budget = min(rng.randrange(20_000, 400_000, 100), fund.available_fen // 8)
        try:
            if budget < 1_000:
                raise FundCapExceeded("本年度经费已用完")
            fire("submit_plan", {"budget_fen": budget, "plan": "方案：采购、施工、验收。"})
        except FundCapExceeded:
            fire("cancel", {"reason": "本年度经费不足"})
            return
        yield
        if rng.random() < 0.15:
            fire("return_for_revision", {"reason": "预算明细不全"})
            yield
            fire("submit_plan", {"budget_fen": budget, "plan": "修改后的方案。"})
            yield
        if rng.random() < 0.04:
            fire("reject", {"reason": "议事会未通过"})
            return
        fire("approve", VOTE)
        yield
        left = budget
        for _ in range(rng.randint(1, 8)):
            yield from self._expense(project, committee, left // 4)
            left -= left // 4
        if rng.random() < 0.04:
            fire("cancel", {"reason": "街道核查后撤销"}, self.street)
            return
        fire("complete_implementation", {"report": "已按方案完成。"})
        yield
        if rng.random() < 0.1:
            fire("rectify", {"issues": "验收发现问题，需整改"})
            yield
            yield from self._expense(project, committee, left // 2)
            fire("complete_implementation", {"report": "整改已完成。"})
            yield
        fire("evaluate", {"score": rng.randint(3, 5), "report": "居民评价良好。"})
        yield
        fire("close", {"notice": "已公示。", "satisfied": 40, "unsatisfied": 2})

    def _expense(self, project: int, committee: Principal, amount: int) -> Iterator[None]:
        if amount <= 0:
            return
        self.invoices += 1
        engine.record_expense(
            self.z,
            committee,
            project,
            {
                "amount_fen": amount,
                "payee": self.rng.choice(PAYEES),
                "invoice_no": f"{committee.id[-3:]}-{project}-{self.invoices}",
                "description": "材料及人工",
            },
        )
        yield

    def _demand(self) -> dict[str, str]:
        return {"content": "希望改善小区环境", "resident": f"居民{self.rng.randrange(10_000)}"}
