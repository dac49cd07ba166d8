"""Properties of input validation and of the council vote rule, over all inputs."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.errors import GuardFailed, ValidationFailed
from engine.rules import fields
from engine.rules.conditions import CONDITIONS
from engine.rules.fields import MAX_AMOUNT_FEN

AMOUNT = {"amount_fen": fields.amount("amount_fen", "金额（分）")}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@given(json_values)
def test_an_amount_is_accepted_exactly_when_it_is_an_integer_from_1_to_the_maximum(
    value: Any,
) -> None:
    valid = type(value) is int and 1 <= value <= MAX_AMOUNT_FEN
    try:
        fields.validate(AMOUNT, {"amount_fen": value})
    except ValidationFailed:
        assert not valid
    else:
        assert valid


def _passes(size: int, attendees: int, yes: int, no: int, abstain: int) -> bool:
    """The rule as the source states it, in exact arithmetic."""
    return (
        attendees <= size
        and yes + no + abstain == attendees
        and attendees >= math.ceil(2 * size / 3)
        and yes > attendees / 2
    )


@given(
    st.integers(1, 60),
    st.integers(0, 60),
    st.integers(0, 60),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_a_council_vote_passes_exactly_when_quorum_and_majority_hold(
    size: int, attendees: int, yes: int, no: int, abstain: int
) -> None:
    vote = {
        "council_size": size,
        "attendees": attendees,
        "votes_for": yes,
        "votes_against": no,
        "abstentions": abstain,
    }
    try:
        CONDITIONS["council_vote_passes"].check(vote, None)  # type: ignore[arg-type]
    except GuardFailed:
        assert not _passes(size, attendees, yes, no, abstain)
    else:
        assert _passes(size, attendees, yes, no, abstain)
