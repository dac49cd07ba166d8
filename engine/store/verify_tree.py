"""Checking the Merkle tree's stored rows against the feed they were built from.

Everything auditors get from the tree is read from rows kept beside the history
(``engine.store.merkle``): proofs and checkpoints from ``merkle_nodes``, an event's place
from ``merkle_leaves``, and the stretches a ``since=`` or ``until=`` page reads from
``merkle_blocks``. ``verify --checkpoint`` recomputes a root from the events themselves, so
no stored row can make a false checkpoint pass; but a wrong node makes every proof through
it fail for the auditor who checks it, and a wrong block makes audit pages skip events
without a word. ``verify_tree`` rebuilds all of them from the events, in the caller's one
snapshot, and names the first row that differs — or that is missing, or that should not be
there.

The feed is read in batches of leaves; per batch one range read of the leaves, one of each
level's nodes that the batch completes, and one of its blocks, so memory stays flat and
every read is an index range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store import feed
from engine.store.merkle import BLOCK, leaf_hash, node_hash
from engine.store.tables import events, merkle_blocks, merkle_leaves, merkle_nodes, merkle_state

_BATCH = 4096  # leaves per round of reads; a multiple of BLOCK, so blocks end inside one


@dataclass(frozen=True, slots=True)
class TreeFault:
    """The first stored row of the tree that the events do not bear out."""

    table: str  # merkle_state | merkle_leaves | merkle_nodes | merkle_blocks
    row: str  # which row, as an auditor would look it up: "position 17", "level 3, idx 2"
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "reason": self.reason}


def verify_tree(
    conn: Connection, progress: Callable[[int], None] | None = None
) -> tuple[int, TreeFault | None]:
    """(leaves checked, the first fault or None) for the whole tree, in ``conn``'s snapshot."""
    state = conn.execute(sa.select(merkle_state)).one()
    size, last = int(state.size), (int(state.last_xid), int(state.last_id))
    check = _Check()
    key = feed.START
    while check.done < size:
        # Not only the feed's final part: every leaf was final when the tree took it in, so
        # no event can come before one now, and on PostgreSQL the watermark can stand below
        # the tree's end for a moment (a transaction of another database that just ended
        # counts as ours, ``engine.store.feed``), which would read as leaves with no event.
        rows = feed.rows_after(
            conn,
            sa.select(events.c.id, events.c.xid, events.c.hash, events.c.at),
            key,
            min(_BATCH, size - check.done),
            final=False,
        )
        if not rows:
            return check.done, TreeFault(
                "merkle_state", "size", f"树记有 {size} 片叶子，事件流中只有 {check.done} 条事件"
            )
        fault = check.batch(conn, rows)
        if fault is not None:
            return check.done, fault
        key = feed.key_of(rows[-1])
        if progress is not None:
            progress(check.done)
    if size and key != last:
        return size, TreeFault(
            "merkle_state", "last", f"树的末片叶子记为事件 {last[1]}，实为事件 {key[1]}"
        )
    return size, _extra_rows(conn, size)


class _Check:
    """The tree rebuilt leaf by leaf, as a binary counter: ``lefts[level]`` is the complete
    subtree of that level waiting for its right sibling."""

    def __init__(self) -> None:
        self.done = 0
        self.lefts: dict[int, bytes] = {}
        self.earliest: datetime | None = None
        self.latest: datetime | None = None

    def batch(self, conn: Connection, rows: list[Any]) -> TreeFault | None:
        first = self.done
        nodes: dict[tuple[int, int], bytes] = {}
        blocks: dict[int, tuple[datetime, datetime]] = {}
        for offset, row in enumerate(rows):
            self._add(first + offset, leaf_hash(row.hash), nodes)
            at: datetime = row.at
            self.earliest = at if self.earliest is None else min(self.earliest, at)
            self.latest = at if self.latest is None else max(self.latest, at)
            if (first + offset + 1) % BLOCK == 0:
                assert self.latest is not None
                blocks[(first + offset) // BLOCK] = (self.earliest, self.latest)
                self.earliest = self.latest = None
        self.done += len(rows)
        return (
            _leaves(conn, first, [int(r.id) for r in rows])
            or _nodes(conn, nodes)
            or _blocks(conn, blocks)
        )

    def _add(self, position: int, value: bytes, nodes: dict[tuple[int, int], bytes]) -> None:
        level, idx = 0, position
        nodes[(0, idx)] = value
        while idx % 2 == 1:
            value = node_hash(self.lefts.pop(level), value)
            level, idx = level + 1, idx // 2
            nodes[(level, idx)] = value
        self.lefts[level] = value


def _leaves(conn: Connection, first: int, event_ids: list[int]) -> TreeFault | None:
    p = merkle_leaves.c.position
    stored = dict(
        conn.execute(
            sa.select(p, merkle_leaves.c.event_id).where(
                p.between(first, first + len(event_ids) - 1)
            )
        ).all()
    )
    for position, event_id in enumerate(event_ids, start=first):
        found = stored.get(position)
        if found is None:
            return TreeFault(
                "merkle_leaves", f"position {position}", f"缺少叶子（应为事件 {event_id}）"
            )
        if int(found) != event_id:
            return TreeFault(
                "merkle_leaves",
                f"position {position}",
                f"叶子记为事件 {found}，按事件流顺序应为事件 {event_id}",
            )
    return None


def _nodes(conn: Connection, nodes: dict[tuple[int, int], bytes]) -> TreeFault | None:
    by_level: dict[int, list[int]] = {}
    for level, idx in nodes:
        by_level.setdefault(level, []).append(idx)
    n = merkle_nodes.c
    for level, indexes in sorted(by_level.items()):
        stored = dict(
            conn.execute(
                sa.select(n.idx, n.hash).where(
                    n.level == level, n.idx.between(min(indexes), max(indexes))
                )
            ).all()
        )
        for idx in sorted(indexes):
            found = stored.get(idx)
            expected = nodes[(level, idx)].hex()
            if found is None:
                return TreeFault("merkle_nodes", f"level {level}, idx {idx}", "缺少节点")
            if found != expected:
                return TreeFault(
                    "merkle_nodes",
                    f"level {level}, idx {idx}",
                    f"节点哈希 {found} 与由事件重算的 {expected} 不符",
                )
    return None


def _blocks(conn: Connection, blocks: dict[int, tuple[datetime, datetime]]) -> TreeFault | None:
    if not blocks:
        return None
    b = merkle_blocks.c
    stored = {
        int(r.block): (r.min_at, r.max_at)
        for r in conn.execute(
            sa.select(b.block, b.min_at, b.max_at).where(b.block.between(min(blocks), max(blocks)))
        )
    }
    for block, span in sorted(blocks.items()):
        found = stored.get(block)
        if found is None:
            return TreeFault("merkle_blocks", f"block {block}", "缺少时间块")
        if tuple(found) != span:
            return TreeFault(
                "merkle_blocks",
                f"block {block}",
                f"时间范围记为 {found[0].isoformat()} 至 {found[1].isoformat()}，"
                f"由事件重算为 {span[0].isoformat()} 至 {span[1].isoformat()}"
                "（按时间筛选的审计查询会漏掉事件）",
            )
    return None


def _extra_rows(conn: Connection, size: int) -> TreeFault | None:
    """A row past what ``size`` leaves make: every row before that was checked above, and
    primary keys rule out twins, so these few seeks find any row left over."""
    p = merkle_leaves.c.position
    stray = conn.execute(sa.select(sa.func.min(p)).where(sa.or_(p < 0, p >= size))).scalar()
    if stray is not None:
        return TreeFault("merkle_leaves", f"position {stray}", f"树只有 {size} 片叶子，多出此行")
    n = merkle_nodes.c
    top = size.bit_length()  # no complete subtree of 2**top leaves or more
    for level in range(top):
        idx = conn.execute(
            sa.select(sa.func.min(n.idx)).where(
                n.level == level, sa.or_(n.idx < 0, n.idx >= size >> level)
            )
        ).scalar()
        if idx is not None:
            return TreeFault(
                "merkle_nodes", f"level {level}, idx {idx}", "该层没有此节点，多出此行"
            )
    beyond = conn.execute(
        sa.select(sa.func.min(n.level)).where(sa.or_(n.level < 0, n.level >= top))
    ).scalar()
    if beyond is not None:
        return TreeFault(
            "merkle_nodes", f"level {beyond}", f"{size} 片叶子的树没有这一层，多出此行"
        )
    b = merkle_blocks.c
    block = conn.execute(
        sa.select(sa.func.min(b.block)).where(sa.or_(b.block < 0, b.block >= size // BLOCK))
    ).scalar()
    if block is not None:
        return TreeFault("merkle_blocks", f"block {block}", "该时间块尚未完整，多出此行")
    return None
