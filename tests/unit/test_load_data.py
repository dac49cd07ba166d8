"""The verifier reads an event's data with ``orjson`` for speed; what it reads must be what
``json.loads`` reads, whatever the text holds, or a verdict would depend on the parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.store.history import canonical_json
from engine.store.verify_read import load_data

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses those, json reads them
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\\x00\u2028')),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(read: Any, expected: Any) -> bool:
    """Equal, and of the same types throughout (``1 == 1.0`` is not enough)."""
    return canonical_json(read) == canonical_json(expected)


@given(values)
def test_any_data_the_engine_writes_reads_as_json_reads_it(value: Any) -> None:
    text = canonical_json(value)
    assert _same(load_data(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"n":123456789012345678901234567890}',  # beyond 64 bits
        '{"x":NaN}',
        '{"x":-Infinity}',
        '{"s":"\\ud800"}',  # a lone surrogate
        '{"a":1,"a":2}',  # a repeated key: the last one wins in both
        " [1] ",
        '{"a":1.0}',
        '{"a":1E2}',
    ],
)
def test_a_text_orjson_refuses_is_read_by_json(text: str) -> None:
    assert _same(load_data(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "{", '{"a":}', "[1,]", None])
def test_what_neither_reads_is_refused_as_json_refuses_it(text: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as by_json:
        json.loads(text)
    with pytest.raises(by_json.type):
        load_data(text)
