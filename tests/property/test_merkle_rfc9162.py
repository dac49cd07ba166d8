"""The engine's Merkle tree agrees with RFC 9162's definitions at every size.

The engine computes from stored complete-subtree hashes (``engine.store.merkle``); the
reference (``tests/merkle_reference.py``) recurses over lists as the RFC writes it.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from engine.store import merkle
from tests import merkle_reference as ref


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(f"事件 {i}".encode()).digest() for i in range(n)]


def _getter(leaves: list[bytes]) -> merkle.Get:
    """Complete subtrees as the reference computes them: what merkle_nodes would hold."""

    def get(level: int, idx: int) -> bytes:
        width = 1 << level
        chunk = leaves[idx * width : (idx + 1) * width]
        assert len(chunk) == width, "the engine asked for a subtree that is not complete"
        return ref.mth(chunk)

    return get


sizes = st.integers(min_value=1, max_value=130)


@given(n=sizes, data=st.data())
def test_roots_and_inclusion_paths_are_the_rfcs(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    get = _getter(leaves)
    assert merkle.root(n, get) == ref.mth(leaves)
    m = data.draw(st.integers(0, n - 1))
    path = merkle.inclusion_path(m, n, get)
    assert path == ref.path(m, leaves)
    assert ref.verify_inclusion(m, n, leaves[m], path, ref.mth(leaves))


@given(second=sizes, data=st.data())
def test_consistency_proofs_are_the_rfcs(second: int, data: st.DataObject) -> None:
    leaves = _leaves(second)
    first = data.draw(st.integers(1, second))
    get = _getter(leaves)
    proof = merkle.consistency_path(first, second, get)
    if first < second:
        assert proof == ref.proof(first, leaves)
    else:
        assert proof == []
    assert ref.verify_consistency(first, second, proof, ref.mth(leaves[:first]), ref.mth(leaves))


@given(hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_the_streamed_root_is_the_rfcs(hashes: list[bytes]) -> None:
    assert merkle.streamed_root(h.hex() for h in hashes) == (len(hashes), ref.mth(hashes))


def test_the_reference_verifiers_reject_a_wrong_proof() -> None:
    leaves = _leaves(11)
    path = ref.path(5, leaves)
    assert not ref.verify_inclusion(5, 11, leaves[4], path, ref.mth(leaves))
    proof = ref.proof(4, leaves)
    assert not ref.verify_consistency(4, 11, proof, ref.mth(leaves[:5]), ref.mth(leaves))
