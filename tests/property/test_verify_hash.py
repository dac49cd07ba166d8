"""The verifier's fast event hash is ``event_hash``, byte for byte, whatever the fields hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.store.history import event_hash, iso
from engine.store.verify_read import EVENT_COLUMNS, EventHasher

# Any text: non-ASCII, quotes, backslashes, control characters, line separators.
texts = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\\x00\x1f\u2028/'),
)
moments = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


def _fields(draw: Any) -> dict[str, Any]:
    return {
        "chain": draw(texts),
        "seq": draw(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        "at": draw(moments),
        "actor": draw(texts),
        "role": draw(texts),
        "community_id": draw(st.none() | texts),
        "project_id": draw(st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        "type": draw(texts),
        "data": draw(texts),
        "prev_hash": draw(texts),
    }


@st.composite
def events(draw: Any) -> dict[str, Any]:
    return _fields(draw)


def _row(fields: dict[str, Any]) -> tuple[Any, ...]:
    values = {**fields, "id": 1, "at": iso(fields["at"]), "hash": ""}
    return tuple(values[name] for name in EVENT_COLUMNS)


@given(events(), events())
def test_the_fast_hash_equals_event_hash_for_any_fields(first: dict[str, Any], second: Any) -> None:
    hasher = EventHasher()  # one hasher for both: its cache of repeated texts must not leak
    assert hasher(_row(first)) == event_hash(**first)
    assert hasher(_row(second)) == event_hash(**second)
    assert hasher(_row(first)) == event_hash(**first)


@given(events(), st.sampled_from(["seq", "project_id", "actor", "community_id"]))
def test_a_value_of_an_unexpected_type_is_hashed_as_event_hash_would(
    fields: dict[str, Any], name: str
) -> None:
    """A hand-edited SQLite row can hold a float or a text where the engine wrote an int."""
    odd: dict[str, Any] = {"seq": 3.5, "project_id": "7", "actor": 12, "community_id": 1.25}
    fields[name] = odd[name]
    assert EventHasher()(_row(fields)) == event_hash(**fields)
