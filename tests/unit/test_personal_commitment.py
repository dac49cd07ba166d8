"""A demand's commitment to its resident's name and contact, as ``engine.rules.personal``
defines it: the sha256 of the UTF-8 canonical JSON array ``[salt, resident, contact]``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.rules import personal

texts = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(['"', "\\", "\x00", "\u2028", "张"])
)


def _by_definition(salt: Any, resident: Any, contact: Any) -> str:
    array = json.dumps(
        [salt, resident, contact], ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(array.encode()).hexdigest()


@given(texts, texts, st.none() | texts)
def test_the_commitment_is_the_hash_of_the_canonical_array(
    salt: str, resident: str, contact: str | None
) -> None:
    assert personal.commitment(salt, resident, contact) == _by_definition(salt, resident, contact)


@given(st.one_of(st.integers(), st.none(), texts), st.one_of(st.integers(), st.none(), texts))
def test_a_hand_edited_row_s_values_are_hashed_as_json_writes_them(
    resident: Any, contact: Any
) -> None:
    # A SQLite row edited by hand may hold a number or a null where a text belongs.
    salt = personal.new_salt()
    assert personal.commitment(salt, resident, contact) == _by_definition(salt, resident, contact)
