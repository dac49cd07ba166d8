"""A statement opens with the allocation in force, and its last line is what /funds shows."""

from __future__ import annotations

from datetime import UTC, datetime

import engine
from engine.model import CLI, FISCAL_TZ, fiscal_year
from engine.store.uow import Zizhi
from tests.factories import World


def _agree(z: Zizhi, community: str, year: int) -> None:
    shown = {f.fund: f for f in engine.funds(z, CLI, community, year=year)}
    for fund, now in shown.items():
        lines = engine.statement(z, CLI, community, fund, year).items
        assert lines, fund
        assert lines[0].kind == "allocate"
        last = lines[-1]
        assert (last.allocated_fen, last.reserved_fen, last.spent_fen, last.available_fen) == (
            now.allocated_fen,
            now.reserved_fen,
            now.spent_fen,
            now.available_fen,
        ), fund


def test_an_account_not_used_yet_opens_with_its_default_allocation(z: Zizhi, world: World) -> None:
    year = fiscal_year(z.clock())
    urban, rural = world.community(), world.community(kind="rural")
    for community, party_service in ((urban, 20_000_000), (rural, 0)):
        _agree(z, community, year)
        lines = engine.statement(z, CLI, community, "party_service", year).items
        assert len(lines) == 1
        line = lines[0]
        assert (line.default, line.id, line.event_id, line.project_id) == (True, 0, None, None)
        assert (line.amount_fen, line.allocated_fen, line.available_fen) == (party_service,) * 3
        created = engine.get_community(z, CLI, community).created_at
        assert line.at == max(created, datetime(year, 1, 1, tzinfo=FISCAL_TZ).astimezone(UTC))
    # Next year: from the first moment of that year in Asia/Shanghai.
    lines = engine.statement(z, CLI, urban, "self_governance", year + 1).items
    assert lines[0].at == datetime(year + 1, 1, 1, tzinfo=FISCAL_TZ)


def test_once_used_the_statement_opens_with_its_recorded_allocation(z: Zizhi, world: World) -> None:
    year = fiscal_year(z.clock())
    community = world.community()
    world.advance(world.project(community), "implementation", budget_fen=300_000)
    _agree(z, community, year)
    lines = engine.statement(z, CLI, community, "self_governance", year).items
    assert [(line.kind, line.default) for line in lines] == [
        ("allocate", False),
        ("reserve", False),
    ]
    assert lines[0].amount_fen == 5_000_000 and lines[0].event_id is not None
    engine.set_allocation(z, CLI, community, "party_service", year, 25_000_000)
    _agree(z, community, year)
    first = engine.statement(z, CLI, community, "party_service", year).items[0]
    assert (first.default, first.amount_fen) == (False, 25_000_000)
