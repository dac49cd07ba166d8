"""Deciding a step: the refusals come in a fixed order, and nothing is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine.errors import (
    ActionNotAllowed,
    Forbidden,
    FundCapExceeded,
    GuardFailed,
    ValidationFailed,
)
from engine.model import Role
from tests.factories import VOTE
from workflows import load_registry

SG = load_registry().latest("self_governance")
PS = load_registry().latest("party_service")


@dataclass
class Facts:
    demands: int = 1
    available: int = 5_000_000

    def demand_count(self) -> int:
        return self.demands

    def available_fen(self) -> int:
        return self.available


def test_a_valid_step_names_its_source_target_and_cleaned_fields() -> None:
    step = SG.decide(
        "planning", "submit_plan", Role.committee, {"budget_fen": 100, "plan": "方案"}, Facts()
    )
    assert (step.source, step.dest) == ("planning", "review")
    assert dict(step.data) == {"budget_fen": 100, "plan": "方案"}
    assert step.action.effects == ("set_budget",)


def test_an_unknown_action_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="未知操作“launch”"):
        SG.decide("planning", "launch", Role.committee, {}, Facts())


def test_the_wrong_role_is_forbidden_before_anything_else() -> None:
    with pytest.raises(Forbidden, match="评议通过"):
        SG.decide("planning", "approve", Role.street, {}, Facts())


def test_the_wrong_state_is_refused_before_the_fields_are_looked_at() -> None:
    with pytest.raises(ActionNotAllowed, match="方案编制"):
        SG.decide("planning", "approve", Role.committee, {"bogus": 1}, Facts())


def test_a_final_state_allows_nothing() -> None:
    for action in SG.actions:
        with pytest.raises((ActionNotAllowed, Forbidden)):
            SG.decide("completed", action, Role.committee, {}, Facts())


def test_bad_fields_are_refused_before_conditions_run() -> None:
    with pytest.raises(ValidationFailed):
        SG.decide(
            "planning", "submit_plan", Role.committee, {"budget_fen": "1"}, Facts(available=0)
        )


def test_closing_collection_needs_a_demand() -> None:
    with pytest.raises(GuardFailed, match="至少需要登记一条居民需求"):
        SG.decide("demand_collection", "close_collection", Role.committee, {}, Facts(demands=0))


def test_a_plan_over_the_available_fund_is_a_fund_refusal() -> None:
    with pytest.raises(FundCapExceeded):
        SG.decide(
            "planning",
            "submit_plan",
            Role.committee,
            {"budget_fen": 5_000_001, "plan": "方案"},
            Facts(available=5_000_000),
        )


@pytest.mark.parametrize(
    ("vote", "reason"),
    [
        ({**VOTE, "attendees": 5, "votes_for": 4, "votes_against": 1}, "未达法定人数"),
        ({**VOTE, "attendees": 10, "votes_for": 10, "votes_against": 0}, "超过议事会人数"),
        ({**VOTE, "votes_for": 3, "votes_against": 3, "abstentions": 1}, "未超过出席人数"),
        ({**VOTE, "votes_for": 6, "votes_against": 2}, "与出席人数 7 不符"),
    ],
)
def test_a_council_vote_without_quorum_or_majority_fails(vote: dict[str, Any], reason: str) -> None:
    with pytest.raises(GuardFailed, match=reason):
        SG.decide("review", "approve", Role.committee, vote, Facts())


def test_the_street_approves_party_service_projects() -> None:
    assert PS.decide("review", "approve", Role.committee, VOTE, Facts()).dest == "street_review"
    step = PS.decide("street_review", "street_approve", Role.street, {}, Facts())
    assert (step.dest, step.action.effects) == ("implementation", ("reserve",))
    with pytest.raises(Forbidden):
        PS.decide("street_review", "street_approve", Role.committee, {}, Facts())


def test_allowed_actions_depend_on_state_and_role() -> None:
    assert SG.allowed_actions("review", Role.committee) == [
        "reject",
        "return_for_revision",
        "approve",
        "cancel",
    ]
    assert SG.allowed_actions("review", Role.street) == ["cancel"]
    assert SG.allowed_actions("completed", Role.committee) == []
    assert PS.allowed_actions("street_review", Role.street) == ["street_approve", "cancel"]
    assert SG.allowed_actions("review", Role.auditor) == []
