"""Signed checkpoints over the whole history, and proofs against them (RFC 9162 style).

A checkpoint says "the first ``tree_size`` events of the feed have this Merkle root", signed
with the server's Ed25519 key. Copies live outside the server — the public notice board
shows the latest, the daily ``audit.checkpoint`` event carries one to webhooks — so a
rewrite of anything before a kept checkpoint shows: ``verify_checkpoint`` recomputes the
root of the first ``tree_size`` events from the events themselves.

The key pair is made the first time it is needed (``zizhi serve`` asks at start) and kept in
the database (``audit_signing_keys``), so every server and worker sharing the database signs
with the same key; it is never logged or shown, only its public half. Whoever can rewrite
the database can also sign: a checkpoint proves what the server said, and its copies
outside prove the server cannot take it back.

The signed message is UTF-8 text, four lines each ending in ``\\n``::

    zizhi-checkpoint/1
    <tree_size in decimal>
    <root hash, 64 lower-case hex digits>
    <timestamp, ISO 8601 UTC with microseconds, e.g. 2026-11-30T08:00:00.000000+00:00>
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection

from engine.errors import ValidationFailed
from engine.model import Actor, Principal, Role
from engine.store import feed, merkle
from engine.store.db import insert_ignore
from engine.store.history import SYSTEM_CHAIN, iso
from engine.store.tables import audit_checkpoints, audit_signing_keys, events
from engine.store.uow import Zizhi
from engine.store.verify import verify_chains

FORMAT = "zizhi-checkpoint/1"
CHECKPOINT_EVERY = timedelta(days=1)
CHECKPOINT_EVENT = "audit.checkpoint"
CHECKPOINTER = Actor("checkpoint", "system")
MAX_TREE_SIZE = 2**62


@dataclass(frozen=True, slots=True)
class PublicKeyView:
    algorithm: str
    key_id: str  # sha256 of the raw public key, hex
    public_key: str  # the raw 32-byte key, base64
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class CheckpointView:
    format: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str  # Ed25519 over signed_message(), base64

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature,
        }


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    ok: bool
    tree_size: int
    checked: int  # events of the current history read
    message: str


def signed_message(tree_size: int, root_hash: str, timestamp: str) -> bytes:
    return f"{FORMAT}\n{tree_size}\n{root_hash}\n{timestamp}\n".encode()


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


def ensure_signing_key(z: Zizhi) -> PublicKeyView:
    """The server's public key, making the key pair if there is none yet (racing starts
    agree: the first insert wins)."""
    with z.read() as conn:
        row = conn.execute(sa.select(audit_signing_keys)).first()
    if row is None:
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        with z.db.write() as conn:
            conn.execute(
                insert_ignore(conn.dialect.name, audit_signing_keys),
                {
                    "id": 1,
                    "private_key": base64.b64encode(raw).decode(),
                    "public_key": base64.b64encode(public).decode(),
                    "created_at": z.clock(),
                },
            )
            conn.commit()
        with z.read() as conn:
            row = conn.execute(sa.select(audit_signing_keys)).one()
    return _public_view(base64.b64decode(row.public_key))


def public_key(z: Zizhi) -> PublicKeyView:
    """The server's public key for checkpoints (made on first use)."""
    return ensure_signing_key(z)


def checkpoint(z: Zizhi) -> CheckpointView:
    """A signed checkpoint of the whole feed as far as it is final now (a new one is signed
    and kept when the tree has grown since the last). With nothing past the tree's end one
    read answers; otherwise the write path extends the tree as far as the feed is final
    and signs only if it grew."""
    with z.read() as conn:
        keyed = conn.execute(sa.select(audit_signing_keys.c.id)).first() is not None
        grown = merkle.pending(conn)
        latest = latest_signed(conn)
        size = merkle.size(conn)
    if not keyed:
        ensure_signing_key(z)
    if not grown and latest is not None and latest.tree_size == size:
        return latest
    with z.db.write() as conn:
        view = _sign_new(conn, z.clock())
        conn.commit()
    return view


def latest_checkpoint(z: Zizhi) -> CheckpointView | None:
    """The last checkpoint signed, without signing one (for pages anyone may load)."""
    with z.read() as conn:
        return latest_signed(conn)


def publish_checkpoint(z: Zizhi, *, force: bool = False) -> CheckpointView | None:
    """Sign a checkpoint and record it as an ``audit.checkpoint`` event on the system chain
    (webhooks carry it out) — unless one was recorded less than a day ago and not ``force``.
    What ``zizhi checkpoint`` and the dispatcher's daily round run."""
    if not force and not checkpoint_due(z):
        return None
    view = checkpoint(z)
    with z.change(CHECKPOINTER, chain=SYSTEM_CHAIN) as change:
        # Asked again under the system chain's lock: several dispatchers (``zizhi worker``
        # processes) may have found it due at once, and the day's event is recorded once.
        if not force and not _due(change.conn, change.at):
            return None
        data = view.as_dict()
        del data["format"]
        change.history.append(CHECKPOINT_EVENT, data)
        change.commit()
    return view


def checkpoint_due(z: Zizhi) -> bool:
    with z.read() as conn:
        return _due(conn, z.clock())


def _due(conn: Connection, now: datetime) -> bool:
    last = conn.execute(
        sa.select(sa.func.max(events.c.at)).where(
            events.c.chain == SYSTEM_CHAIN, events.c.type == CHECKPOINT_EVENT
        )
    ).scalar()
    return last is None or now - last >= CHECKPOINT_EVERY


def parse_checkpoint(document: object) -> CheckpointView:
    """A checkpoint as served by ``GET /api/v1/audit/checkpoint``; anything else refused
    with a sentence saying what is wrong."""
    expected = "应为 GET /api/v1/audit/checkpoint 返回的 JSON 对象"
    if not isinstance(document, Mapping):
        raise ValidationFailed(f"这不是检查点文件：{expected}")
    if "format" not in document and "tree_size" not in document:
        raise ValidationFailed(
            f"这不是检查点文件：{expected}（含 format、tree_size、root_hash、timestamp、"
            "key_id、signature）"
        )
    problems: list[str] = []
    if document.get("format") != FORMAT:
        problems.append(f"format 应为 {FORMAT}")
    size = document.get("tree_size")
    if type(size) is not int or not 0 <= size < MAX_TREE_SIZE:
        problems.append("tree_size 应为非负整数")
    for name in ("root_hash", "key_id"):
        value = document.get(name)
        if not (isinstance(value, str) and len(value) == 64 and _is_hex(value)):
            problems.append(f"{name} 应为 64 位十六进制")
    for name in ("timestamp", "signature"):
        if not isinstance(document.get(name), str):
            problems.append(f"缺少 {name}")
    if problems:
        raise ValidationFailed("这不是检查点文件：" + "；".join(problems))
    return CheckpointView(
        format=FORMAT,
        tree_size=int(document["tree_size"]),
        root_hash=str(document["root_hash"]),
        timestamp=str(document["timestamp"]),
        key_id=str(document["key_id"]),
        signature=str(document["signature"]),
    )


def verify_signature(view: CheckpointView, public_raw: bytes) -> bool:
    """Whether the checkpoint was signed by the holder of this public key."""
    try:
        signature = base64.b64decode(view.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            signature, signed_message(view.tree_size, view.root_hash, view.timestamp)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_checkpoint(z: Zizhi, principal: Principal, document: object) -> CheckpointReport:
    """Offline: does the current history extend this kept checkpoint? Checks its signature
    with the server's key, every chain, and recomputes the root of the first ``tree_size``
    events in feed order from the events themselves (no stored tree node is trusted)."""
    principal.require(Role.auditor, Role.admin)
    view = parse_checkpoint(document)
    with z.read() as conn:
        row = conn.execute(sa.select(audit_signing_keys.c.public_key)).first()
        if row is None:
            return CheckpointReport(False, view.tree_size, 0, "本库没有签名密钥，无法核对检查点")
        public = base64.b64decode(row.public_key)
        if view.key_id != key_id_of(public) or not verify_signature(view, public):
            return CheckpointReport(
                False, view.tree_size, 0, "检查点签名无效：不是本服务器签发的，或已被改动"
            )
        checked, fault = verify_chains(conn)
        if fault is not None:
            return CheckpointReport(
                False, view.tree_size, checked, f"历史链校验失败：{fault.reason}"
            )
        count, root = merkle.streamed_root(_feed_hashes(conn, view.tree_size))
    if count < view.tree_size:
        return CheckpointReport(
            False,
            view.tree_size,
            count,
            f"当前历史只有 {count} 个事件，少于检查点的 {view.tree_size} 个：有事件被删除",
        )
    if root.hex() != view.root_hash:
        return CheckpointReport(
            False,
            view.tree_size,
            count,
            f"检查点之前的历史被改写：前 {view.tree_size} 个事件的默克尔根与检查点不符",
        )
    return CheckpointReport(
        True, view.tree_size, count, f"当前历史延续了检查点（前 {view.tree_size} 个事件一致）"
    )


# --- internals ---------------------------------------------------------------------------------


def _feed_hashes(conn: Connection, limit: int, batch: int = 5000) -> Iterator[str]:
    """The first ``limit`` event hashes in feed order. No watermark: every event a kept
    checkpoint covers was below the watermark when it was signed, so no event committed
    since can sort before one of them (unless someone wrote it there, which must show)."""
    after, left = feed.START, limit
    while left > 0:
        rows = feed.rows_after(
            conn,
            sa.select(events.c.id, events.c.xid, events.c.hash),
            after,
            min(batch, left),
            final=False,
        )
        if not rows:
            return
        yield from (r.hash for r in rows)
        left -= len(rows)
        after = feed.key_of(rows[-1])


def _sign_new(conn: Connection, now: datetime) -> CheckpointView:
    size = merkle.extend(conn)
    latest = latest_signed(conn)
    if latest is not None and latest.tree_size == size:
        return latest
    root = merkle.compute(conn, lambda get: merkle.root(size, get)).hex()
    key = conn.execute(sa.select(audit_signing_keys)).one()
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key.private_key))
    public = base64.b64decode(key.public_key)
    timestamp = iso(now)
    signature = base64.b64encode(private.sign(signed_message(size, root, timestamp))).decode()
    view = CheckpointView(FORMAT, size, root, timestamp, key_id_of(public), signature)
    conn.execute(
        sa.insert(audit_checkpoints).values(
            tree_size=size, root_hash=root, at=now, key_id=view.key_id, signature=signature
        )
    )
    return view


def latest_signed(conn: Connection) -> CheckpointView | None:
    """The latest checkpoint signed, read in ``conn``'s transaction."""
    c = audit_checkpoints.c
    row = conn.execute(sa.select(audit_checkpoints).order_by(c.tree_size.desc()).limit(1)).first()
    if row is None:
        return None
    return CheckpointView(
        FORMAT, int(row.tree_size), row.root_hash, iso(row.at), row.key_id, row.signature
    )


def _public_view(public: bytes) -> PublicKeyView:
    pem = (
        Ed25519PublicKey.from_public_bytes(public)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return PublicKeyView("Ed25519", key_id_of(public), base64.b64encode(public).decode(), pem)


def _is_hex(value: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in value)


def checkpoint_json(view: CheckpointView) -> str:
    """A checkpoint as JSON: what ``zizhi checkpoint`` prints and ``verify --checkpoint`` reads."""
    return json.dumps(view.as_dict(), ensure_ascii=False, indent=2)
