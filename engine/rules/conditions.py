"""Named workflow conditions (guards). A definition names them; they are implemented here once.

A condition receives the action's validated fields and read-only ``Facts`` about the project
and raises ``GuardFailed`` (or ``FundCapExceeded`` for money) with a message a committee
member understands. Conditions only read; writes happen in the unit of work afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import FundCapExceeded, GuardFailed


class Facts(Protocol):
    """What a condition may ask about the project it guards."""

    def demand_count(self) -> int: ...

    def available_fen(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    check: Callable[[Mapping[str, Any], Facts], None]
    # Fields the action must declare for the condition to make sense; checked at load time.
    needs_fields: frozenset[str] = frozenset()


def _has_demands(data: Mapping[str, Any], facts: Facts) -> None:
    if facts.demand_count() < 1:
        raise GuardFailed("结束征集前至少需要登记一条居民需求")


def _budget_within_available(data: Mapping[str, Any], facts: Facts) -> None:
    available = facts.available_fen()
    if data["budget_fen"] > available:
        raise FundCapExceeded(f"预算 {data['budget_fen']} 分超过本年度可用经费 {available} 分")


def _council_vote_passes(data: Mapping[str, Any], facts: Facts) -> None:
    size, attendees = data["council_size"], data["attendees"]
    votes_for, against, abstain = data["votes_for"], data["votes_against"], data["abstentions"]
    if attendees > size:
        raise GuardFailed(f"出席人数 {attendees} 超过议事会人数 {size}")
    if votes_for + against + abstain != attendees:
        raise GuardFailed(
            f"赞成、反对、弃权票合计 {votes_for + against + abstain}，与出席人数 {attendees} 不符"
        )
    # 到会人数须达议事会成员的三分之二以上：attendees ≥ ⌈2/3·size⌉, in integers.
    if 3 * attendees < 2 * size:
        needed = -(-2 * size // 3)
        raise GuardFailed(f"出席人数 {attendees} 未达法定人数（至少 {needed} 人）")
    # 评议通过需过半数：votes_for > attendees / 2.
    if 2 * votes_for <= attendees:
        raise GuardFailed(f"赞成票 {votes_for} 未超过出席人数 {attendees} 的半数")


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("has_demands", _has_demands),
        Condition("budget_within_available", _budget_within_available, frozenset({"budget_fen"})),
        Condition(
            "council_vote_passes",
            _council_vote_passes,
            frozenset({"council_size", "attendees", "votes_for", "votes_against", "abstentions"}),
        ),
    )
}
