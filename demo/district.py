"""``zizhi demo``: a realistic demo district, every change driven through the engine.

Gusu-like: 8 streets, 168 communities (社区, a few 村). Each community runs 3–5 resident
self-governance projects a year within its ¥50,000 and, if urban, a few party-service
projects within its ¥200,000. Past years' projects are finished (mostly completed); the
current year's are spread over every step, at least one in each state of both workflows.
Nothing is written behind the engine's back, so the history chain and the ledger verify
exactly as they would after real use.

A year is built in two passes. First a plan, pure and seeded (``demo.plan``): which
projects, where each stops, budgets that together fit the community's allocation, and every
change each goes through, stamped with a moment of that year. Then, here, the changes of all
communities run in time order with the clock set to each one's moment, so time never runs
backwards on any chain. The current year's moments are squeezed into the part of the year
that has passed, so its timelines look real too; only the tokens printed at the end carry
the real time.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import engine
from demo.plan import WORKDAY, WORKFLOWS, Op, Place, Planner, district, moment, street_username
from engine import (
    CLI,
    FISCAL_TZ,
    AlreadyExists,
    Database,
    Principal,
    Role,
    WorkflowRegistry,
    Zizhi,
    create_token,
    create_user,
    fiscal_year,
    hash_password,
    utc_now,
)

DISTRICT = "姑苏区"
DEFAULT_SEED = 2014  # the year Gusu started 居民自治项目化
DEFAULT_YEARS = 3  # the two previous years, finished and closed, and this one under way

Progress = Callable[[str, int, int], None]  # (what is happening, done, total)


@dataclass(frozen=True, slots=True)
class SignIn:
    label: str  # who, in Chinese: 社区居委会（里河社区）
    token: str


@dataclass(frozen=True, slots=True)
class DemoResult:
    places: list[Place]
    years: list[int]
    projects: int
    current_states: dict[str, int]  # this year's projects by state, both workflows together
    events: int
    password: str  # every demo web user's
    sign_ins: list[SignIn]  # API tokens, the admin's first
    admin_token: str


def generate(
    z: Zizhi,
    *,
    communities: int = 168,
    years: int = DEFAULT_YEARS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> DemoResult:
    """Fill an empty database with the demo district; refused if it has any community."""
    existing = engine.list_communities(z, CLI, limit=1).items
    if existing:
        raise AlreadyExists(
            f"数据库中已有社区（如“{existing[0].name}”），演示数据只能生成到空数据库中；"
            "请用 ZIZHI_DATABASE_URL 指定一个新的数据库后重试"
        )
    if not 1 <= years <= 10:
        raise ValueError("a demo covers 1 to 10 years")
    chosen = district(communities)
    this_year = fiscal_year(utc_now())
    calendar = list(range(this_year - years + 1, this_year + 1))
    planner = Planner(random.Random(seed), z.policy, z.workflows)
    plans = [(year, planner.year(chosen, current=year == this_year)) for year in calendar]
    people = _People(chosen)
    clock = _Clock()
    fast = _BulkLoad(z.db)
    demo_z = Zizhi(fast.db, z.workflows, policy=z.policy, clock=clock)
    done, total = 0, len(chosen) + len(people.accounts) + sum(len(ops) for _, ops in plans)

    def tick(description: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(description, done, total)

    now = utc_now()
    squeeze = _squeeze(plans[-1][1], now)

    def simulated(year: int, office_minutes: float) -> datetime:
        if year == this_year:
            office_minutes *= squeeze
        return min(moment(year, office_minutes), now)  # never in the future

    # The district exists from the first working morning of the first year.
    clock.moment = simulated(calendar[0], 0)
    for place in chosen:
        engine.create_community(
            demo_z,
            CLI,
            id=place.id,
            name=place.name,
            street=place.street,
            district=DISTRICT,
            kind=place.kind,
        )
        tick("正在创建社区")
    password = "demo-" + secrets.token_hex(5)
    hashed = hash_password(password)  # once: Argon2 is slow on purpose, the users share it
    for username, role, community_ids, streets in people.accounts:
        create_user(
            demo_z,
            CLI,
            username=username,
            role=role,
            password=hashed,
            communities=community_ids,
            streets=streets,
        )
        tick("正在创建登录用户")
    for year, ops in plans:
        for op in ops:
            clock.moment = simulated(year, op.at)
            _run(demo_z, op, people)
            tick(f"正在办理 {year} 年度的项目")
        if year != this_year:  # closed on New Year's morning, as ``zizhi year close`` would
            clock.moment = datetime(year + 1, 1, 1, 8, 0, tzinfo=FISCAL_TZ).astimezone(UTC)
            engine.close_year(demo_z, CLI, year)
    fast.close()
    sign_ins = _tokens(z, chosen)
    if progress is not None:
        progress("正在校验历史链与账本", done, total)
    report = engine.verify(z, CLI)
    if not report.ok:  # every change went through the engine, so this is an engine bug
        raise RuntimeError(f"the demo history does not verify: {report.first_bad}")
    this_years = {op.project for op in plans[-1][1] if op.project is not None}
    return DemoResult(
        places=chosen,
        years=calendar,
        projects=planner.projects,
        current_states=dict(Counter(p.final_state for p in this_years)),
        events=report.checked,
        password=password,
        sign_ins=sign_ins,
        admin_token=sign_ins[0].token,
    )


def summary(result: DemoResult, workflows: WorkflowRegistry) -> list[str]:
    """What to tell whoever ran the demo; the caller prints the admin token after it."""
    labels = state_labels(workflows)
    streets = sorted({p.street for p in result.places}, key=street_username)
    villages = sum(p.kind == "rural" for p in result.places)
    span = "–".join(str(y) for y in sorted({result.years[0], result.years[-1]}))
    by_state = "、".join(
        f"{label} {result.current_states[s]}"
        for s, label in labels.items()
        if s in result.current_states
    )
    lead, other = result.places[0], result.places[-1]
    return [
        f"演示辖区已生成：{DISTRICT} {len(streets)} 个街道、{len(result.places)} 个社区"
        f"（其中 {villages} 个村），{span} 年度共 {result.projects} 个项目；"
        f"历史事件 {result.events} 条，哈希链与账本校验通过。",
        f"本年度项目所处阶段：{by_state}",
        *(
            [
                f"先看上一年度报表：/public/reports/{result.years[-2]}（公开摘要），"
                f"/reports/{result.years[-2]}（审计人员、街道工作人员登录后，可下载 Excel）"
            ]
            if len(result.years) > 1
            else []
        ),
        "",
        f"网页登录用户（打开首页即转到登录页 /login），密码均为：{result.password}",
        "  管理员        admin",
        "  审计人员      auditor（全市只读）",
        "  街道工作人员  " + "、".join(f"{street_username(s)}（{s}）" for s in streets),
        f"  社区居委会    以社区编号登录，如 {lead.id}（{lead.name}）、{other.id}（{other.name}）",
        "",
        "API 令牌（请求头 Authorization: Bearer <令牌>；明文只显示这一次）：",
        *(f"  {s.label}：{s.token}" for s in result.sign_ins[1:]),
        f"  {result.sign_ins[0].label}（在最后一行）：",
    ]


# --- running it ----------------------------------------------------------------------------


def _squeeze(ops: Sequence[Op], now: datetime) -> float:
    """How much to shrink this year's planned office minutes to end before now."""
    local = now.astimezone(FISCAL_TZ)
    passed = (
        (
            local - local.replace(month=1, day=1, hour=8, minute=30, second=0, microsecond=0)
        ).total_seconds()
        / 86400
        * WORKDAY
    )
    last = max((op.at for op in ops), default=0.0)
    return 1.0 if last <= passed else max(passed, 0.0) / last


class _BulkLoad:
    """The database the demo writes through: on SQLite a second handle on the same file that
    does not wait for the disk at each of its thousands of commits (``synchronous=OFF``);
    closing it takes one checkpoint that puts everything on disk. PostgreSQL as it is."""

    def __init__(self, db: Database) -> None:
        self._main = db
        self.db = db
        if db.is_sqlite:
            url = db.url.render_as_string(hide_password=False)
            self.db = Database(url, sqlite_synchronous="OFF", pool_size=1)

    def close(self) -> None:
        if self.db is self._main:
            return
        self.db.dispose()
        with self._main.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class _Clock:
    """The simulated moment while one is set, the real time otherwise."""

    def __init__(self) -> None:
        self.moment: datetime | None = None

    def __call__(self) -> datetime:
        return self.moment if self.moment is not None else utc_now()


class _People:
    """Who acts: each community's committee and each street's officer, all web users."""

    def __init__(self, chosen: Sequence[Place]) -> None:
        streets = sorted({p.street for p in chosen}, key=street_username)
        self._committees = {
            p.id: Principal(
                id=f"user:{p.id}",
                name=p.committee_name,
                role=Role.committee,
                communities=frozenset({p.id}),
            )
            for p in chosen
        }
        self._officers = {
            s: Principal(
                id=f"user:{street_username(s)}",
                name=f"{s}办事处",
                role=Role.street,
                streets=frozenset({s}),
            )
            for s in streets
        }
        # (username, role, communities, streets); the usernames match the actors above.
        self.accounts: list[tuple[str, str, list[str], list[str]]] = [
            ("admin", "admin", [], []),
            ("auditor", "auditor", [], []),
            *((street_username(s), "street", [], [s]) for s in streets),
            *((p.id, "committee", [p.id], []) for p in chosen),
        ]

    def committee(self, place: Place) -> Principal:
        return self._committees[place.id]

    def officer(self, place: Place) -> Principal:
        return self._officers[place.street]


def _run(z: Zizhi, op: Op, people: _People) -> None:
    p, committee = op.project, people.committee(op.place)
    if op.kind == "pool":
        demand = engine.record_demand(z, committee, op.place.id, op.data)
        if p is not None:
            p.pool_demand_id = demand.id
        return
    assert p is not None, f"a {op.kind} change belongs to a project"
    if op.kind == "open":
        p.id = engine.open_project(
            z,
            committee,
            community_id=op.place.id,
            workflow=p.workflow,
            title=p.title,
            menu_item=p.idea.menu_item,
        ).id
    elif op.kind == "link":
        engine.add_to_project(z, committee, p.id, {"demand_id": p.pool_demand_id})
    elif op.kind == "demand":
        engine.add_to_project(z, committee, p.id, op.data)
    elif op.kind == "expense":
        engine.record_expense(z, committee, p.id, op.data)
    elif op.kind == "self_manage":  # the check's date is the day it is recorded
        checked_on = z.clock().astimezone(FISCAL_TZ).date().isoformat()
        engine.record_self_management(z, committee, p.id, {**op.data, "checked_on": checked_on})
    else:
        actor = people.officer(op.place) if op.by_street else committee
        engine.fire(z, actor, p.id, op.action, op.data)


def _tokens(z: Zizhi, chosen: Sequence[Place]) -> list[SignIn]:
    lead = chosen[0]  # 里河社区, in 金阊街道
    grants = [
        ("管理员", "admin", [], []),
        ("审计人员（全市只读）", "auditor", [], []),
        (f"街道工作人员（{lead.street}）", "street", [], [lead.street]),
        (f"社区居委会（{lead.name}）", "committee", [lead.id], []),
    ]
    sign_ins = []
    for label, role, community_ids, streets in grants:
        token = create_token(
            z, CLI, name=f"演示：{label}", role=role, communities=community_ids, streets=streets
        )
        assert token.token is not None, "a new token carries its secret"
        sign_ins.append(SignIn(label, token.token))
    return sign_ins


def state_labels(workflows: WorkflowRegistry) -> dict[str, str]:
    """Every state of the demo's workflows with its label, in the order projects pass them
    (a state only one workflow has comes right after the state before it there)."""
    order: list[str] = []
    labels: dict[str, str] = {}
    for name in WORKFLOWS:
        wf = workflows.latest(name)
        before: str | None = None
        for state in wf.states:
            if state not in order:
                order.insert(order.index(before) + 1 if before is not None else len(order), state)
                labels[state] = wf.state_label(state)
            before = state
    return {s: labels[s] for s in order}
