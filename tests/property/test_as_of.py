"""``funds(as_of=…)`` equals the replay of the history up to that moment, for every moment.

Each example runs in a community of its own under a clock the test moves: allocations
(the first one opening the account with another amount than the default), approvals that
reserve, expenses, several of them at one same moment; then every moment around each
change — a microsecond before, at, a microsecond after — is asked for, and the answer must
be what folding the community's ``ledger.*`` events up to that moment gives (the default
allocation before the first).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.errors import FundCapExceeded
from engine.model import CLI, ENTRY_KIND_OF_EVENT, Balance, Fund
from engine.store.tables import events
from engine.store.uow import Zizhi
from tests.factories import World
from tests.property.examples import share_of_examples

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
steps_between = st.sampled_from(
    [timedelta(0), TICK, timedelta(seconds=1), timedelta(hours=3), timedelta(days=1)]
)
SELF_GOVERNANCE = st.integers(0, 9_000_000)
PARTY_SERVICE = st.integers(20_000_000, 30_000_000)  # not below the urban floor
operations = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(
                st.just("allocate"), st.just(Fund.self_governance), st.integers(0, 9_000_000)
            ),
            st.tuples(
                st.just("allocate"),
                st.just(Fund.party_service),
                st.integers(20_000_000, 30_000_000),
            ),
            st.tuples(st.just("plan"), st.integers(1, 3_000_000)),
            st.tuples(st.just("spend"), st.integers(1, 1_000_000)),
        ),
        steps_between,
    ),
    min_size=1,
    max_size=8,
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _replayed(z: Zizhi, community: str, fund: str, moment: datetime) -> Balance | None:
    """The account folded from its ledger events at or before ``moment`` (None: none yet)."""
    with z.read() as conn:
        rows = conn.execute(
            sa.select(events.c.type, events.c.data)
            .where(
                events.c.chain == community,
                events.c.type.like("ledger.%"),
                events.c.at <= moment,
            )
            .order_by(events.c.seq)
        ).all()
    balance = None
    for row in rows:
        data = json.loads(row.data)
        if data["fund"] == fund:
            balance = ENTRY_KIND_OF_EVENT[row.type].apply(
                balance or Balance(0, 0, 0), data["amount_fen"]
            )
    return balance


@settings(max_examples=share_of_examples(3))
@given(operations)
def test_as_of_equals_replay_of_the_history_up_to_that_moment(
    z: Zizhi,
    ops: list[tuple[tuple, timedelta]],  # type: ignore[type-arg]
) -> None:
    clock = Clock()
    zc = Zizhi(z.db, z.workflows, policy=z.policy, clock=clock)
    world = World(zc)
    community = world.community()
    committee = world.committee(community)
    implementing: list[int] = []
    moments = [clock.now]
    for op, step in ops:
        clock.now += step
        moments.append(clock.now)
        try:
            if op[0] == "allocate":
                engine.set_allocation(zc, CLI, community, op[1].value, 2026, op[2])
            elif op[0] == "plan":
                project = world.advance(
                    world.project(community), "implementation", budget_fen=op[1]
                )
                implementing.append(project.id)
            elif implementing:
                engine.record_expense(
                    zc,
                    committee,
                    implementing[-1],
                    {
                        "amount_fen": op[1],
                        "payee": "某公司",
                        "invoice_no": f"{clock.now.timestamp()}-{op[1]}",
                        "description": "材料",
                    },
                )
        except FundCapExceeded:
            pass
    defaults = {f.value: z.policy.default_fen(f.value, "urban") for f in Fund}
    asked = sorted({m + d for m in moments for d in (-TICK, timedelta(0), TICK)})
    for moment in asked:
        then = {f.fund: f for f in engine.funds(zc, CLI, community, as_of=moment)}
        for fund, default in defaults.items():
            replayed = _replayed(z, community, fund, moment) or Balance(default, 0, 0)
            got = then[fund]
            assert (got.allocated_fen, got.reserved_fen, got.spent_fen) == (
                replayed.allocated_fen,
                replayed.reserved_fen,
                replayed.spent_fen,
            ), (fund, moment)


def test_an_allocation_raised_from_the_default_is_not_in_force_before_it(z: Zizhi) -> None:
    """The issue's probe: 5,000,000 raised to 6,000,000; a moment before answers 5,000,000."""
    clock = Clock()
    zc = Zizhi(z.db, z.workflows, policy=z.policy, clock=clock)
    community = World(zc).community()
    clock.now += timedelta(hours=1)
    engine.set_allocation(zc, CLI, community, "self_governance", 2026, 6_000_000)
    before = engine.funds(zc, CLI, community, as_of=clock.now - timedelta(seconds=1))
    at = engine.funds(zc, CLI, community, as_of=clock.now)
    assert [f.allocated_fen for f in before if f.fund == "self_governance"] == [5_000_000]
    assert [f.allocated_fen for f in at if f.fund == "self_governance"] == [6_000_000]
