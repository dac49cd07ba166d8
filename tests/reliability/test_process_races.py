"""Client processes — not threads — racing on one database: every figure holds exactly.

Six racer processes (``tests/reliability/racer.py``) start together behind a barrier and
fire approvals, street approvals, expenses, cancels, allocation changes and the close of last
year at the same projects (most of them twice, from different racers), spread over four
community-years: this year's in K, where the money alone fixes the outcome (so exactly that
many approvals and expenses may win, in both funds); this year's in M, where cancels and a
lowered allocation make it depend on the interleaving; and last year's in M and N, which a
year close cuts through in the middle of the race. Some expenses are sent two or three times
with one Idempotency-Key by different racers, as a client retrying on several connections
would: they must be done once, and every copy must get the same answer. Afterwards the
database must agree, to the fen, with a reference computed from nothing but the answers the
racers received.

Two drivers: each racer opens its own engine on the database (on SQLite only the file's
own locks stand between the processes), or three ``zizhi serve`` processes share the
database and every racer spreads its calls over them.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

import engine
from engine.model import CLI, fiscal_year
from engine.store.tables import ledger_entries
from engine.store.uow import Zizhi
from tests.e2e.server import REPO, serve
from tests.factories import VOTE, World, assert_replays_to
from tests.reliability.support import last_year_clock

RACERS = 6
SEED = 20_14_168  # Gusu's pilot year and its 168 communities: any fixed number will do
RESERVING = {"approve", "street_approve"}
# What each kind of operation may be refused with in this race; anything else is a bug.
REFUSALS = {
    "reserve": {"fund_cap_exceeded", "action_not_allowed"},
    "cancel": {"action_not_allowed"},
    "expense": {"fund_cap_exceeded", "action_not_allowed"},
    "allocate": {"fund_cap_exceeded"},
    "close_year": {"already_exists"},
}

Account = tuple[str, str, int]  # community, fund, year
Op = dict[str, Any]
Result = dict[str, Any]


@dataclass
class Tracked:
    """A project as the race found it."""

    id: int
    account: Account
    state: str
    budget_fen: int
    as_committee: str
    as_street: str


@dataclass
class Race:
    last_year: int
    projects: dict[int, Tracked] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)  # in any order, on any racer
    sequences: list[list[Op]] = field(default_factory=list)  # in this order, on one racer
    closes: list[Op] = field(default_factory=list)  # each in the middle of a racer's list
    allocated_before: dict[Account, int] = field(default_factory=dict)
    # Community-years whose outcome the money fixes: account → successful reservations.
    fixed_reservations: dict[Account, int] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def op(self, **op: Any) -> Op:
        return {"id": next(self._ids), **op}

    def every_op(self) -> list[Op]:
        return [*self.ops, *itertools.chain.from_iterable(self.sequences), *self.closes]

    def deal(self, racers: int, rng: random.Random) -> list[list[Op]]:
        free = list(self.ops)
        rng.shuffle(free)
        hands = [free[i::racers] for i in range(racers)]
        for n, sequence in enumerate(self.sequences):
            hand = hands[n % racers]
            slots = sorted(rng.randrange(len(hand) + 1) for _ in sequence)
            for offset, (slot, op) in enumerate(zip(slots, sequence, strict=True)):
                hand.insert(slot + offset, op)
        for n, close in enumerate(self.closes):
            hand = hands[(len(self.sequences) + n) % racers]
            hand.insert(len(hand) // 2, close)
        return hands

    def principals(self) -> set[str]:
        return {op["as"] for op in self.every_op()}


class Builder:
    """Builds the race's projects through the engine and the operations that race on them."""

    def __init__(self, z: Zizhi) -> None:
        self.z = z
        self.now = World(z)
        self.past = World(Zizhi(z.db, z.workflows, clock=last_year_clock()))
        self.race = Race(last_year=fiscal_year(z.clock()) - 1)

    def projects(
        self, world: World, community: str, workflow: str, state: str, budget: int, n: int
    ) -> list[Tracked]:
        committee = world.committee(community)
        street = world.street_of(community)
        made = []
        for _ in range(n):
            project = world.project(community, workflow=workflow, committee=committee)
            project = world.advance(project, state, budget_fen=budget, committee=committee)
            account = (community, project.fund, project.year)
            tracked = Tracked(
                project.id,
                account,
                state,
                budget,
                as_committee=f"committee:{community}",
                as_street=f"street:{street}",
            )
            self.race.projects[project.id] = tracked
            if account not in self.race.allocated_before:
                fund = engine.funds(self.z, CLI, community, year=project.year)
                self.race.allocated_before[account] = next(
                    f.allocated_fen for f in fund if f.fund == project.fund
                )
            made.append(tracked)
        return made

    def approvals(self, tracked: list[Tracked], times: int = 2) -> None:
        for t in tracked:
            for _ in range(times):
                if t.state == "street_review":
                    op = self.race.op(
                        kind="fire",
                        project=t.id,
                        action="street_approve",
                        data={"note": "同意"},
                        **{"as": t.as_street},
                    )
                else:
                    op = self.race.op(
                        kind="fire",
                        project=t.id,
                        action="approve",
                        data=VOTE,
                        **{"as": t.as_committee},
                    )
                self.race.ops.append(op)

    def expenses(self, tracked: list[Tracked], amount: int, times: int, *, copies: int = 1) -> None:
        """``times`` expenses on each project; with ``copies``, each one is sent that many times
        with the same Idempotency-Key (a client retrying on several connections at once)."""
        for t in tracked:
            for n in range(times):
                data = {
                    "amount_fen": amount,
                    "payee": "施工队",
                    "invoice_no": f"R{t.id}-{n}",
                    "description": "材料",
                }
                key = {"key": f"expense-{t.id}-{n}"} if copies > 1 else {}
                for _ in range(copies):
                    self.race.ops.append(
                        self.race.op(
                            kind="expense", project=t.id, data=data, **key, **{"as": t.as_committee}
                        )
                    )

    def cancel(self, t: Tracked, *, by_street: bool = False) -> None:
        self.race.ops.append(
            self.race.op(
                kind="fire",
                project=t.id,
                action="cancel",
                data={"reason": "居民需求已由其他途径解决"},
                **{"as": t.as_street if by_street else t.as_committee},
            )
        )

    def allocations(self, account: Account, values: list[int]) -> None:
        community, fund, year = account
        self.race.sequences.append(
            [
                self.race.op(
                    kind="allocate",
                    community=community,
                    fund=fund,
                    year=year,
                    allocated_fen=value,
                    **{"as": "admin"},
                )
                for value in values
            ]
        )


def build_race(z: Zizhi) -> Race:
    b = Builder(z)
    sg, ps = "self_governance", "party_service"
    # Last year's community-years first, so every chain's times run forward.
    m = b.past.community()
    n = b.past.community()
    m_past_review = b.projects(b.past, m, sg, "review", 600_000, 4)
    m_past_impl = b.projects(b.past, m, sg, "implementation", 700_000, 3)
    n_past_review = b.projects(b.past, n, ps, "street_review", 4_000_000, 4)
    n_past_impl = b.projects(b.past, n, ps, "implementation", 6_000_000, 2)
    # This year. K: the money fixes the outcome (no cancels, no allocation changes).
    k = b.now.community()
    k_impl = b.projects(b.now, k, sg, "implementation", 500_000, 2)
    k_review = b.projects(b.now, k, sg, "review", 1_000_000, 12)
    k_party = b.projects(b.now, k, ps, "street_review", 5_000_000, 9)
    # M: cancels and a lowered allocation make this year's outcome depend on the order.
    m_review = b.projects(b.now, m, sg, "review", 600_000, 6)
    m_impl = b.projects(b.now, m, sg, "implementation", 700_000, 4)

    race = b.race
    # ¥50,000 less ¥10,000 held by the two projects already implementing: 4 plans of ¥10,000.
    race.fixed_reservations[k_review[0].account] = 4
    race.fixed_reservations[k_party[0].account] = 4  # ¥200,000 fits 4 plans of ¥50,000
    b.approvals(k_review + k_party + m_review + m_past_review + n_past_review)
    b.expenses(k_impl, 100_000, 8, copies=2)  # 5 of them fit each ¥5,000 reservation
    b.expenses(m_impl, 150_000, 5, copies=3)  # 4 fit each ¥7,000 reservation
    b.expenses(m_past_impl, 150_000, 5)
    b.expenses(n_past_impl, 1_500_000, 5)  # 4 fit each ¥60,000 reservation
    b.cancel(m_impl[0])
    b.cancel(m_impl[1])
    b.cancel(m_impl[1], by_street=True)
    b.cancel(m_review[0])
    b.cancel(m_review[1], by_street=True)
    b.cancel(m_past_impl[0])
    b.cancel(m_past_review[0])
    b.cancel(n_past_impl[0], by_street=True)
    b.cancel(n_past_review[0])
    b.allocations(m_impl[0].account, [4_600_000, 3_900_000, 3_300_000, 4_400_000, 3_000_000])
    b.allocations(m_past_impl[0].account, [4_000_000, 3_200_000, 2_500_000, 3_600_000, 2_200_000])
    # Party-service money of an urban community never goes below its ¥200,000 floor.
    b.allocations(n_past_impl[0].account, [26_000_000, 22_000_000, 20_000_000, 24_000_000])
    race.closes = [
        race.op(kind="close_year", year=race.last_year, **{"as": "admin"}) for _ in range(2)
    ]
    return race


# --- running the racers ------------------------------------------------------------------------


def run_racers(plans: list[dict[str, Any]], *, timeout: float = 600) -> dict[int, Result]:
    """Start one racer process per plan, release them together, and gather every result."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.racer"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in plans
    ]
    try:
        for racer, plan in zip(racers, plans, strict=True):
            assert racer.stdin is not None
            racer.stdin.write(json.dumps(plan, ensure_ascii=False) + "\n")
            racer.stdin.flush()
        deadline = time.monotonic() + timeout  # a safety net: racers are ready in seconds
        for racer in racers:
            assert racer.stdout is not None
            ready = select.select([racer.stdout], [], [], max(0, deadline - time.monotonic()))[0]
            line = racer.stdout.readline() if ready else ""
            assert line.strip() == "ready", f"a racer did not start: {line!r} {_stderr(racer)}"
        for racer in racers:  # the barrier: every racer is waiting for this line
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()  # communicate() closes it
        results: dict[int, Result] = {}
        for racer in racers:
            out, err = racer.communicate(timeout=max(1, deadline - time.monotonic()))
            assert racer.returncode == 0, err
            for result in json.loads(out.strip().splitlines()[-1]):
                results[result["id"]] = result
        return results
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.communicate()


def _stderr(racer: subprocess.Popen[str]) -> str:
    if racer.poll() is None:
        racer.kill()
    return racer.communicate()[1]


# --- what must hold afterwards -----------------------------------------------------------------


def _kind(op: Op) -> str:
    if op["kind"] == "fire":
        return "reserve" if op["action"] in RESERVING else op["action"]
    return str(op["kind"])


def _once_each(done: list[tuple[Op, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One answer per request: copies sent with one Idempotency-Key all got the same answer."""
    by_key: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for op, answer in done:
        by_key[op.get("key", op["id"])].append(answer)
    for answers in by_key.values():
        assert all(a == answers[0] for a in answers), answers
    return [answers[0] for answers in by_key.values()]


def check_race(z: Zizhi, race: Race, results: dict[int, Result]) -> None:
    ops = {op["id"]: op for op in race.every_op()}
    assert set(results) == set(ops)

    # Every refusal is one the rules allow; year_closed only in the year being closed.
    wrong = []
    for op_id, result in results.items():
        op = ops[op_id]
        allowed = set(REFUSALS[_kind(op)])
        year = race.projects[op["project"]].account[2] if "project" in op else op.get("year")
        if year == race.last_year and op["kind"] != "close_year":
            allowed.add("year_closed")
        if not result["ok"] and result["code"] not in allowed:
            wrong.append((op, result))
    assert not wrong, f"{len(wrong)} unexpected answers, e.g. {wrong[:3]}"

    closes = [results[op["id"]] for op in race.closes]
    assert sum(r["ok"] for r in closes) == 1, closes  # one close wins, the other already_exists
    closed_year = race.last_year

    done: dict[int, list[tuple[Op, dict[str, Any]]]] = defaultdict(list)
    for op_id, result in results.items():
        if result["ok"] and "project" in ops[op_id]:
            done[ops[op_id]["project"]].append((ops[op_id], result["answer"]))

    # Each project: its state and money follow from the answers its racers got.
    totals: dict[Account, list[int]] = defaultdict(lambda: [0, 0])
    for t in race.projects.values():
        answers = done[t.id]
        reserved_by = [a for op, a in answers if _kind(op) == "reserve"]
        cancelled_by = [a for op, a in answers if _kind(op) == "cancel"]
        spent_by = _once_each([(op, a) for op, a in answers if op["kind"] == "expense"])
        assert len(reserved_by) <= 1 and len(cancelled_by) <= 1, answers
        spent = sum(a["amount_fen"] for a in spent_by)
        holds = t.state == "implementation" or bool(reserved_by)
        released = bool(cancelled_by) or t.account[2] == closed_year
        reserved = t.budget_fen - spent if holds and not released else 0
        state = "cancelled" if cancelled_by else "implementation" if reserved_by else t.state
        for answer in cancelled_by:  # no expense can follow a cancel, so it saw them all
            assert (answer["state"], answer["reserved_fen"], answer["spent_fen"]) == (
                "cancelled",
                0,
                spent,
            )
        got = engine.get_project(z, CLI, t.id)
        assert (got.state, got.reserved_fen, got.spent_fen) == (state, reserved, spent), t
        recorded = {e.id: e.amount_fen for e in engine.list_expenses(z, CLI, t.id)}
        assert recorded == {a["id"]: a["amount_fen"] for a in spent_by}, t
        assert_replays_to(engine.project_history(z, CLI, t.id), got, t)
        totals[t.account][0] += reserved
        totals[t.account][1] += spent

    # Each community-year: allocated is the allocator's last successful change; reserved and
    # spent are the sums over its projects.
    allocated = dict(race.allocated_before)
    for sequence in race.sequences:
        for op in sequence:
            result = results[op["id"]]
            if result["ok"]:
                answer = result["answer"]
                assert answer["allocated_fen"] == op["allocated_fen"]
                assert answer["reserved_fen"] + answer["spent_fen"] <= answer["allocated_fen"]
                allocated[(op["community"], op["fund"], op["year"])] = op["allocated_fen"]
    for account, (reserved, spent) in totals.items():
        community, fund_name, year = account
        fund = next(f for f in engine.funds(z, CLI, community, year=year) if f.fund == fund_name)
        assert (fund.allocated_fen, fund.reserved_fen, fund.spent_fen) == (
            allocated[account],
            reserved,
            spent,
        ), account
        assert fund.reserved_fen + fund.spent_fen <= fund.allocated_fen

    # Where the money decides alone, exactly as many reservations and expenses won as it fits.
    for account, winners in race.fixed_reservations.items():
        won = sum(
            1
            for t in race.projects.values()
            if t.account == account
            for op, _ in done[t.id]
            if _kind(op) == "reserve"
        )
        assert won == winners, account
    for t in race.projects.values():
        if t.state != "implementation" or t.account[2] == closed_year:
            continue
        if any(_kind(op) == "cancel" for op, _ in done[t.id]):
            continue
        tries = {
            op.get("key", op["id"]): op["data"]["amount_fen"]
            for op in ops.values()
            if op["kind"] == "expense" and op["project"] == t.id
        }
        fits = min(len(tries), t.budget_fen // max(tries.values()))
        spent = _once_each([(op, a) for op, a in done[t.id] if op["kind"] == "expense"])
        assert len(spent) == fits, t

    # At every moment the ledger recorded, reserved + spent stayed within the allocation.
    e = ledger_entries.c
    with z.read() as conn:
        over = conn.execute(
            sa.select(sa.func.count()).where(
                sa.or_(
                    e.reserved_fen + e.spent_fen > e.allocated_fen,
                    e.reserved_fen < 0,
                    e.spent_fen < 0,
                )
            )
        ).scalar_one()
    assert over == 0
    report = engine.verify(z, CLI)
    assert report.ok, report.first_bad


def _url(z: Zizhi) -> str:
    return z.db.url.render_as_string(hide_password=False)


def test_client_processes_racing_through_their_own_engines_keep_every_figure_exact(
    fresh_z: Zizhi,
) -> None:
    race = build_race(fresh_z)
    hands = race.deal(RACERS, random.Random(SEED))
    results = run_racers([{"driver": "engine", "url": _url(fresh_z), "ops": h} for h in hands])
    check_race(fresh_z, race, results)


def test_clients_racing_through_three_servers_on_one_database_keep_every_figure_exact(
    fresh_z: Zizhi,
) -> None:
    race = build_race(fresh_z)
    tokens = {}
    for spec in race.principals():
        role, _, scope = spec.partition(":")
        tokens[spec] = engine.create_token(
            fresh_z,
            CLI,
            name=spec,
            role=role,
            communities=[scope] if role == "committee" else [],
            streets=[scope] if role == "street" else [],
        ).token
    hands = race.deal(RACERS, random.Random(SEED + 1))
    with ExitStack() as servers:
        bases = [servers.enter_context(serve(_url(fresh_z)))[0] for _ in range(3)]
        results = run_racers(
            [
                {
                    "driver": "http",
                    "bases": bases[i % 3 :] + bases[: i % 3],
                    "tokens": tokens,
                    "ops": h,
                }
                for i, h in enumerate(hands)
            ]
        )
    check_race(fresh_z, race, results)
