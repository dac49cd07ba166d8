"""One change is one transaction: a failure at any step leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine.model import CLI
from engine.store import uow
from engine.store.history import ChainWriter
from engine.store.ledger import Ledger
from engine.store.tables import chain_heads, events, fund_accounts, ledger_entries
from engine.store.uow import Zizhi
from tests.factories import VOTE, World


class Boom(Exception):
    pass


def _snapshot(z: Zizhi, community: str) -> dict[str, Any]:
    with z.read() as conn:

        def rows(table: sa.Table, where: Any) -> list[tuple[Any, ...]]:
            return [
                tuple(r)
                for r in conn.execute(sa.select(table).where(where).order_by(*table.primary_key))
            ]

        return {
            "events": rows(events, events.c.community_id == community),
            "entries": rows(ledger_entries, ledger_entries.c.community_id == community),
            "accounts": rows(fund_accounts, fund_accounts.c.community_id == community),
            "head": rows(chain_heads, chain_heads.c.chain == community),
            "projects": [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT id, state, version, reserved_fen, spent_fen FROM projects "
                        "WHERE community_id = :c ORDER BY id"
                    ),
                    {"c": community},
                )
            ],
        }


def _explode_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    original = getattr(owner, name)

    def explode(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise Boom(name)

    monkeypatch.setattr(owner, name, explode)


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (ChainWriter, "append"),  # after the transition's event
        (Ledger, "reserve"),  # after the reservation (account, entry, ledger event)
        (uow, "save_project"),  # after the project's new state
        (ChainWriter, "flush"),  # after the chain head moved, just before commit
    ],
)
def test_an_approval_that_fails_midway_leaves_no_trace(
    world: World, z: Zizhi, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str
) -> None:
    community = world.community()
    project = world.advance(world.project(community), "review", budget_fen=1_000_000)
    before = _snapshot(z, community)
    _explode_after(monkeypatch, owner, name)
    with pytest.raises(Boom):
        engine.fire(z, world.committee(community), project.id, "approve", VOTE)
    monkeypatch.undo()
    assert _snapshot(z, community) == before
    # and the same approval then goes through cleanly
    assert (
        engine.fire(z, world.committee(community), project.id, "approve", VOTE).state
        == "implementation"
    )


def test_an_expense_that_fails_after_spending_leaves_no_trace(
    world: World, z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = world.community()
    project = world.advance(world.project(community), "implementation", budget_fen=100_000)
    before = _snapshot(z, community)
    _explode_after(monkeypatch, Ledger, "spend")
    with pytest.raises(Boom):
        engine.record_expense(
            z,
            world.committee(community),
            project.id,
            {"amount_fen": 1, "payee": "甲", "invoice_no": "X", "description": "测试"},
        )
    monkeypatch.undo()
    assert _snapshot(z, community) == before
    assert engine.list_expenses(z, CLI, project.id) == []


def test_an_allocation_change_that_fails_leaves_no_trace(
    world: World, z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = world.community()
    engine.set_allocation(z, CLI, community, "self_governance", 2033, 100)
    before = _snapshot(z, community)
    _explode_after(monkeypatch, Ledger, "set_allocation")
    with pytest.raises(Boom):
        engine.set_allocation(z, CLI, community, "self_governance", 2033, 200)
    monkeypatch.undo()
    assert _snapshot(z, community) == before
