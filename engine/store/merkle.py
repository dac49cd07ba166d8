"""A Merkle tree over the feed, as Certificate Transparency builds one (RFC 9162 §2.1).

Leaf ``i`` is the ``i``-th event in feed order (``engine.store.feed``); its data is the
event's hash (32 bytes), so the leaf hash is ``SHA-256(0x00 || event hash)`` and an interior
node ``SHA-256(0x01 || left || right)``. The tree is the RFC's left-balanced tree: the root
of ``n`` leaves splits them at the largest power of two below ``n``.

What is stored makes proofs a handful of primary-key reads at any size: each event's
position (``merkle_leaves``) and the hash of every *complete* subtree (``merkle_nodes``:
level ``L``, index ``i`` covers leaves ``[i·2^L, (i+1)·2^L)``). Any range the RFC's
definitions ask for splits into O(log n) complete subtrees, fetched in one statement.

Alongside, ``merkle_blocks`` keeps the earliest and latest event times of every complete
block of ``BLOCK`` leaves: a block whose latest time is before a moment holds no event at or
after it, and one whose earliest time is at or after a moment holds none before it. So a
``since=`` or ``until=`` page reads only the blocks that reach into its span of time, from
the cursor's block on, and what lies past the last complete block (``time_ranges``), rather
than the whole feed after the cursor. Times need not follow the feed's order (clocks of
several servers, long transactions, an odd clock): a stray event only adds its own block to
what is read.

The tree grows only at its end (the feed below the watermark never changes), by
``extend``, which one writer runs at a time (an advisory lock on PostgreSQL; SQLite has one
writer anyway). It takes no lock any event writer takes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store import feed
from engine.store.tables import events, merkle_blocks, merkle_leaves, merkle_nodes, merkle_state

T = TypeVar("T")
Get = Callable[[int, int], bytes]  # (level, index) -> the complete subtree's hash

_SEQUENCER = 0x7A7A4D4B  # the advisory lock that lets one process extend the tree at a time
_BATCH = 5000
# Leaves per merkle_blocks row. Fixed for good: the stored rows are blocks of this size, so a
# change needs a migration that rebuilds them (0010 fills older trees with the same number).
BLOCK = 256
_HITS = 64  # blocks a since= page asks for at most; it reads on past them unbounded
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(event_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree(start: int, end: int, get: Get) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion produces."""
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        return get(size.bit_length() - 1, start // size)
    k = _split(size)
    return node_hash(subtree(start, start + k, get), subtree(start + k, end, get))


def root(size: int, get: Get) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree(0, size, get)


def inclusion_path(index: int, size: int, get: Get, start: int = 0) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, for leaf ``index`` of the first ``size`` leaves."""
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*inclusion_path(index, k, get, start), subtree(start + k, start + size, get)]
    return [*inclusion_path(index - k, size - k, get, start + k), subtree(start, start + k, get)]


def consistency_path(first: int, second: int, get: Get) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (empty when the sizes are equal)."""
    if first == second:
        return []

    def sub(m: int, start: int, size: int, whole: bool) -> list[bytes]:
        if m == size:
            return [] if whole else [subtree(start, start + size, get)]
        k = _split(size)
        if m <= k:
            return [*sub(m, start, k, whole), subtree(start + k, start + size, get)]
        return [*sub(m - k, start + k, size - k, False), subtree(start, start + k, get)]

    return sub(first, 0, second, True)


def compute(conn: Connection, fn: Callable[[Get], T]) -> T:
    """Run ``fn`` over the stored nodes: once to learn which it needs, then with them all
    fetched in one statement."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, idx: int) -> bytes:
        wanted.add((level, idx))
        return bytes(32)

    fn(record)
    found = _fetch(conn, wanted)
    if len(found) != len(wanted):
        raise LookupError("the Merkle tree lacks a node it should have")
    return fn(lambda level, idx: found[(level, idx)])


def _fetch(conn: Connection, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored nodes among ``keys`` (a few dozen at most: O(log² n)), in one statement;
    per level an IN list on the primary key (a row-value IN would not use it on SQLite).

    The statement is written as text: its shape changes with every proof, and building it
    as SQLAlchemy expressions cost more than running it (a third of a proof at a million
    events). Every value in it is an ``int`` formatted here, never text from a caller."""
    by_level: dict[int, list[int]] = {}
    for level, idx in keys:
        by_level.setdefault(int(level), []).append(int(idx))
    if not by_level:
        return {}
    where = " OR ".join(
        f"(level = {level} AND idx IN ({','.join(map(str, sorted(ix)))}))"
        for level, ix in sorted(by_level.items())
    )
    rows = conn.exec_driver_sql(f"SELECT level, idx, hash FROM merkle_nodes WHERE {where}")
    return {(int(r[0]), int(r[1])): bytes.fromhex(r[2]) for r in rows}


def size(conn: Connection) -> int:
    return int(conn.execute(sa.select(merkle_state.c.size)).scalar_one())


def position_of(conn: Connection, event_id: int) -> int | None:
    row = conn.execute(
        sa.select(merkle_leaves.c.position).where(merkle_leaves.c.event_id == event_id)
    ).first()
    return None if row is None else int(row.position)


def pending(conn: Connection) -> bool:
    """Whether any event lies past the tree's end in feed order — final or not yet: the
    cheap question (an index seek, no watermark), asked before taking the write path, where
    ``extend`` reaches only as far as the feed is final."""
    state = conn.execute(sa.select(merkle_state)).one()
    last = (state.last_xid, state.last_id)
    return bool(feed.rows_after(conn, sa.select(events.c.id), last, 1, final=False))


def extend(conn: Connection) -> int:
    """Append every event the feed has finalised to the tree; its new size.

    Runs in the caller's write transaction; each batch of events is read in one statement,
    so the watermark and the rows come from one snapshot even at READ COMMITTED."""
    if conn.dialect.name != "sqlite":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEQUENCER})
    state = conn.execute(sa.select(merkle_state)).one()
    n, last = int(state.size), (int(state.last_xid), int(state.last_id))
    while True:
        rows = feed.rows_after(
            conn, sa.select(events.c.id, events.c.xid, events.c.hash), last, _BATCH
        )
        if not rows:
            break
        conn.execute(
            sa.insert(merkle_leaves),
            [{"position": n + i, "event_id": r.id} for i, r in enumerate(rows)],
        )
        _add_nodes(conn, n, [leaf_hash(r.hash) for r in rows])
        _add_blocks(conn, n, n + len(rows))
        n, last = n + len(rows), feed.key_of(rows[-1])
        if len(rows) < _BATCH:  # the feed is read to its end: no need to ask again
            break
    if n != state.size:
        conn.execute(
            sa.update(merkle_state)
            .where(merkle_state.c.id == 1)
            .values(size=n, last_xid=last[0], last_id=last[1])
        )
    return n


def _add_nodes(conn: Connection, old: int, leaves: list[bytes]) -> None:
    """Store the new leaves and every subtree they complete."""
    new = old + len(leaves)
    made: dict[tuple[int, int], bytes] = {(0, old + i): h for i, h in enumerate(leaves)}
    old_nodes: dict[tuple[int, int], bytes] = {}
    level = 1
    while (1 << level) <= new:
        first, last = old >> level, (new >> level) - 1
        if first <= last:
            children = [(level - 1, c) for i in (first, last) for c in (2 * i, 2 * i + 1)]
            missing = [k for k in children if k not in made and k not in old_nodes]
            old_nodes.update(_fetch(conn, missing))
            for i in range(first, last + 1):
                left, right = (level - 1, 2 * i), (level - 1, 2 * i + 1)
                made[(level, i)] = node_hash(
                    made.get(left) or old_nodes[left], made.get(right) or old_nodes[right]
                )
        level += 1
    rows = [{"level": lv, "idx": i, "hash": h.hex()} for (lv, i), h in made.items()]
    for chunk in _chunks(rows, 2000):
        conn.execute(sa.insert(merkle_nodes), chunk)


def _add_blocks(conn: Connection, old: int, new: int) -> None:
    """Store the earliest and latest event times of every block the leaves ``[old, new)``
    complete."""
    rows = []
    for block in range(old // BLOCK, new // BLOCK):
        earliest, latest = conn.execute(
            sa.select(sa.func.min(events.c.at), sa.func.max(events.c.at))
            .select_from(merkle_leaves.join(events, events.c.id == merkle_leaves.c.event_id))
            .where(merkle_leaves.c.position.between(block * BLOCK, (block + 1) * BLOCK - 1))
        ).one()
        rows.append({"block": block, "min_at": earliest, "max_at": latest})
    if rows:
        conn.execute(sa.insert(merkle_blocks), rows)


def time_ranges(
    conn: Connection,
    since: datetime | None,
    until: datetime | None,
    after: feed.FeedKey = feed.START,
) -> list[tuple[feed.FeedKey, feed.FeedKey | None]]:
    """The stretches of the feed after ``after`` that may hold events at or after ``since``
    and before ``until`` (either may be None), in feed order: ``(low, up_to)`` — keys after
    ``low`` and at most ``up_to`` (None: to the feed's end). Runs of complete blocks, from
    the one holding ``after`` on, whose times reach into that span, then everything past
    the last complete block; every other event after ``after`` lies outside it."""
    complete = size(conn) // BLOCK  # read first: blocks and leaves only ever catch up
    b = merkle_blocks.c
    query = sa.select(b.block).where(b.block >= _block_of(conn, after), b.block < complete)
    if since is not None:
        query = query.where(b.max_at >= since)
    if until is not None:
        query = query.where(b.min_at < until)
    hits = list(conn.execute(query.order_by(b.block).limit(_HITS)).scalars())
    runs: list[list[int]] = []
    for block in hits:
        if runs and runs[-1][1] == block - 1:
            runs[-1][1] = block
        else:
            runs.append([block, block])
    if len(hits) == _HITS or (runs and runs[-1][1] == complete - 1):
        # The last run reaches the tail, or there may be more blocks than were asked for (a
        # span that much of the history reaches): read on from its start to the feed's end.
        tail = runs.pop()[0]
    else:
        tail = complete
    edges = {p for first, last in runs for p in (first * BLOCK - 1, (last + 1) * BLOCK - 1)}
    edges.add(tail * BLOCK - 1)
    keys = _keys_at(conn, {p for p in edges if p >= 0})
    keys[-1] = feed.START
    stretches: list[tuple[feed.FeedKey, feed.FeedKey | None]] = [
        (keys[first * BLOCK - 1], keys[(last + 1) * BLOCK - 1]) for first, last in runs
    ]
    stretches.append((keys[tail * BLOCK - 1], None))
    return stretches


def _block_of(conn: Connection, key: feed.FeedKey) -> int:
    """The block holding the event at ``key``: where reading after it starts. A key the
    tree does not hold (past its end, or no event's: a cursor is only a position) starts at
    the tree's end or its start, whichever keeps every event after ``key`` in reach."""
    if key == feed.START:
        return 0
    position = conn.execute(
        sa.select(merkle_leaves.c.position).where(merkle_leaves.c.event_id == key[1])
    ).scalar()
    if position is not None:
        return int(position) // BLOCK
    state = conn.execute(
        sa.select(merkle_state.c.size, merkle_state.c.last_xid, merkle_state.c.last_id)
    ).one()
    return int(state.size) // BLOCK if key >= (state.last_xid, state.last_id) else 0


def _keys_at(conn: Connection, positions: set[int]) -> dict[int, feed.FeedKey]:
    if not positions:
        return {}
    rows = conn.execute(
        sa.select(merkle_leaves.c.position, events.c.xid, events.c.id)
        .select_from(merkle_leaves.join(events, events.c.id == merkle_leaves.c.event_id))
        .where(merkle_leaves.c.position.in_(sorted(positions)))
    )
    return {int(r.position): feed.key_of(r) for r in rows}


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def streamed_root(hashes: Iterable[str]) -> tuple[int, bytes]:
    """(count, root) of the leaves' event hashes in order, in O(log n) memory, from the
    definitions alone (no stored node): for ``verify --checkpoint``."""
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes strictly falling
    count = 0
    for h in hashes:
        count += 1
        item = (1, leaf_hash(h))
        while stack and stack[-1][0] == item[0]:
            left = stack.pop()
            item = (left[0] * 2, node_hash(left[1], item[1]))
        stack.append(item)
    if not stack:
        return 0, EMPTY_ROOT
    acc = stack[-1][1]
    for _, left_hash in reversed(stack[:-1]):
        acc = node_hash(left_hash, acc)
    return count, acc
