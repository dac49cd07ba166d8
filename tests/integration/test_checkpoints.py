"""Signed checkpoints over the whole history: the stored tree agrees with RFC 9162 as it
grows, and a kept checkpoint exposes any rewrite of what came before it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import engine
from engine.model import CLI
from engine.store import feed
from engine.store.history import event_hash
from engine.store.tables import chain_heads, events
from engine.store.uow import Zizhi
from engine.store.verify import verify_chains
from engine.usecases import checkpoints
from tests import merkle_reference as ref
from tests.factories import World

REPO = Path(__file__).resolve().parents[2]


def _feed_leaves(z: Zizhi) -> list[tuple[int, bytes]]:
    """(event id, event hash) of every event in feed order, read without the engine's tree
    (each test's own writes have all ended when it asks)."""
    with z.read() as conn:
        rows = conn.execute(sa.select(events.c.id, events.c.hash).order_by(*feed.order())).all()
    return [(r.id, bytes.fromhex(r.hash)) for r in rows]


def _whole_checkpoint(z: Zizhi) -> engine.CheckpointView:
    """A checkpoint over every event so far. On PostgreSQL the feed, and so the tree, can
    end early for a moment (``tests.factories.settled``): the tree then grows at the next."""
    whole = len(_feed_leaves(z))
    for _ in range(100):
        view = engine.checkpoint(z)
        assert view.tree_size <= whole
        if view.tree_size == whole:
            return view
        time.sleep(0.05)
    raise AssertionError("the tree never reached the feed's end")


def _grow(world: World, rounds: int) -> None:
    for _ in range(rounds):
        community = world.community()
        world.advance(world.project(community), "review", budget_fen=100_000)


def test_the_tree_agrees_with_rfc_9162_at_every_checkpoint(fresh_z: Zizhi) -> None:
    world = World(fresh_z)
    sizes: list[int] = []
    for rounds in (0, 1, 2, 1, 3):  # checkpoints after irregular growth
        _grow(world, rounds)
        view = _whole_checkpoint(fresh_z)
        leaves = _feed_leaves(fresh_z)
        hashes = [h for _, h in leaves]
        assert view.tree_size == len(leaves)  # 0 at first: the empty tree
        assert view.root_hash == ref.mth(hashes).hex()
        sizes.append(view.tree_size)
    n = sizes[-1]
    for index, (event_id, leaf) in enumerate(leaves):
        proof = engine.inclusion_proof(fresh_z, CLI, event_id)
        path = [bytes.fromhex(h) for h in proof.audit_path]
        assert (proof.leaf_index, proof.tree_size) == (index, n)
        assert path == ref.path(index, hashes)
        assert ref.verify_inclusion(index, n, leaf, path, ref.mth(hashes))
    for first in sorted({1, 2, 3, *sizes, n - 1} - {0}):
        for second in (first, *sizes, n):
            if second < first:
                continue
            got = engine.consistency_proof(fresh_z, CLI, first, second)
            path = [bytes.fromhex(h) for h in got.consistency_path]
            assert path == (ref.proof(first, hashes[:second]) if first < second else [])
            assert ref.verify_consistency(
                first, second, path, ref.mth(hashes[:first]), ref.mth(hashes[:second])
            )
            assert got.second_root_hash == ref.mth(hashes[:second]).hex()


def test_a_checkpoint_verifies_with_the_public_key_alone(fresh_z: Zizhi) -> None:
    _grow(World(fresh_z), 1)
    view = _whole_checkpoint(fresh_z)
    key = engine.public_key(fresh_z)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.public_key))
    message = f"zizhi-checkpoint/1\n{view.tree_size}\n{view.root_hash}\n{view.timestamp}\n"
    public.verify(base64.b64decode(view.signature), message.encode())  # raises if wrong
    # The same key on the next start: it is kept, not made again.
    assert engine.ensure_signing_key(fresh_z) == key
    assert engine.checkpoint(fresh_z) == view  # nothing new: the same checkpoint


def test_the_daily_checkpoint_event_is_recorded_once_a_day(fresh_z: Zizhi) -> None:
    _grow(World(fresh_z), 1)
    first = engine.publish_checkpoint(fresh_z)
    assert first is not None
    assert engine.publish_checkpoint(fresh_z) is None  # less than a day later
    recorded = engine.query_events(fresh_z, CLI, engine.EventFilter(type="audit.checkpoint"))
    (event,) = recorded.items
    assert event.chain == "_system"
    assert event.data == {k: v for k, v in first.as_dict().items() if k != "format"}
    assert engine.latest_checkpoint(fresh_z) == first


def test_dispatchers_finding_the_checkpoint_due_at_once_record_it_once(
    fresh_z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``zizhi worker`` processes look at the same moment: both find the day's checkpoint
    due and sign one; the system chain's lock lets only the first record the event."""
    _grow(World(fresh_z), 1)
    both_signed = threading.Barrier(2, timeout=30)
    sign = checkpoints.checkpoint

    def sign_then_wait(z: Zizhi) -> object:
        view = sign(z)
        both_signed.wait()  # each has found it due and signed before either records
        return view

    monkeypatch.setattr(checkpoints, "checkpoint", sign_then_wait)
    published: list[object] = []
    workers = [
        threading.Thread(target=lambda: published.append(engine.publish_checkpoint(fresh_z)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(view is None for view in published) == [False, True]
    recorded = engine.query_events(fresh_z, CLI, engine.EventFilter(type="audit.checkpoint"))
    assert len(recorded.items) == 1


def _unguard(z: Zizhi) -> None:
    with z.db.write() as conn:
        if z.db.is_sqlite:
            conn.execute(sa.text("DROP TRIGGER events_no_update"))
            conn.execute(sa.text("DROP TRIGGER events_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER USER"))
        conn.commit()


def _rewrite_chain_from(z: Zizhi, event_id: int, data: str) -> None:
    """A rewrite that ``zizhi verify`` alone cannot see: the event's data changed and every
    hash from it on recomputed, the chain head moved along."""
    with z.db.write() as conn:
        target = conn.execute(sa.select(events).where(events.c.id == event_id)).one()
        rows = conn.execute(
            sa.select(events)
            .where(events.c.chain == target.chain, events.c.seq >= target.seq)
            .order_by(events.c.seq)
        ).all()
        prev = target.prev_hash
        for row in rows:
            body = data if row.id == event_id else row.data
            digest = event_hash(
                chain=row.chain,
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                role=row.role,
                community_id=row.community_id,
                project_id=row.project_id,
                type=row.type,
                data=body,
                prev_hash=prev,
            )
            conn.execute(
                sa.update(events)
                .where(events.c.id == row.id)
                .values(data=body, prev_hash=prev, hash=digest)
            )
            prev = digest
        conn.execute(
            sa.update(chain_heads).where(chain_heads.c.chain == target.chain).values(hash=prev)
        )
        conn.commit()


def _kept(z: Zizhi) -> dict[str, object]:
    world = World(z)
    _grow(world, 2)
    kept = engine.checkpoint(z).as_dict()
    _grow(world, 1)  # the history goes on after the checkpoint was kept
    assert engine.verify_checkpoint(z, CLI, kept).ok
    return kept


def test_a_consistent_rewrite_before_the_checkpoint_is_caught(fresh_z: Zizhi) -> None:
    kept = _kept(fresh_z)
    victim = _feed_leaves(fresh_z)[3][0]
    _unguard(fresh_z)
    _rewrite_chain_from(fresh_z, victim, json.dumps({"改写": "１２３４５"}, ensure_ascii=False))
    with fresh_z.read() as conn:  # the hash chains alone look fine
        assert verify_chains(conn)[1] is None
    report = engine.verify_checkpoint(fresh_z, CLI, kept)
    assert not report.ok and "改写" in report.message


@pytest.mark.parametrize(
    "edit",
    [
        "data = '{}'",
        "at = at",  # placeholder replaced below per dialect
        "actor = 'token:someone'",
        "type = 'project.created'",
        "hash = prev_hash",
        "seq = seq + 1000",
        "xid = CASE WHEN xid = 0 THEN 1 ELSE 0 END",
        "community_id = NULL",
        "chain = 'elsewhere'",
        "DELETE",
        "PLANT",  # a made-up event slipped in before the checkpoint, on a chain of its own
    ],
)
def test_any_single_edit_before_the_checkpoint_is_caught(fresh_z: Zizhi, edit: str) -> None:
    kept = _kept(fresh_z)
    victim = _feed_leaves(fresh_z)[5][0]
    _unguard(fresh_z)
    if edit.startswith("at"):
        edit = "at = '2020-01-01 00:00:00'" if fresh_z.db.is_sqlite else "at = at - interval '1s'"
    columns = "seq, at, actor, role, community_id, project_id, type, data, prev_hash, hash"
    statement = {
        "DELETE": f"DELETE FROM events WHERE id = {victim}",
        "PLANT": f"INSERT INTO events (chain, xid, {columns}) "
        f"SELECT 'planted', 0, {columns} FROM events WHERE id = {victim}",
    }.get(edit, f"UPDATE events SET {edit} WHERE id = {victim}")
    with fresh_z.db.write() as conn:
        conn.execute(sa.text(statement))
        conn.commit()
    assert not engine.verify_checkpoint(fresh_z, CLI, kept).ok


def _cli(z: Zizhi, *args: str) -> subprocess.CompletedProcess[str]:
    url = z.db.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        env={**os.environ, "ZIZHI_DATABASE_URL": url},
        timeout=120,
        check=False,
    )


def test_zizhi_verify_checkpoint(fresh_z: Zizhi, tmp_path: Path) -> None:
    kept = _kept(fresh_z)
    good = tmp_path / "checkpoint.json"
    good.write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")
    ok = _cli(fresh_z, "verify", "--checkpoint", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "校验通过" in ok.stdout

    for content, says in [
        ("这不是 JSON", "不是检查点文件"),
        ('{"id": 1, "type": "project.created"}\n', "不是检查点文件"),
        (json.dumps([kept]), "不是检查点文件"),
        (json.dumps({**kept, "tree_size": "１２"}), "tree_size"),
        (json.dumps({**kept, "root_hash": "ZZ"}), "root_hash"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        refused = _cli(fresh_z, "verify", "--checkpoint", str(bad))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert says in refused.stderr and "Traceback" not in refused.stderr

    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps({**kept, "tree_size": int(str(kept["tree_size"])) - 1}), encoding="utf-8"
    )
    result = _cli(fresh_z, "verify", "--checkpoint", str(forged))
    assert result.returncode == 1 and "签名无效" in result.stdout

    _unguard(fresh_z)
    _rewrite_chain_from(fresh_z, _feed_leaves(fresh_z)[2][0], '{"x":1}')
    caught = _cli(fresh_z, "verify", "--checkpoint", str(good))
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "校验失败" in caught.stdout and "改写" in caught.stdout


def test_the_dispatcher_records_a_checkpoint_a_day_and_webhooks_carry_it(
    fresh_z: Zizhi,
) -> None:
    from datetime import timedelta

    from engine import subscriptions
    from engine.model import utc_now
    from tests.webhooks import LOCAL, dispatching, receiving, wait_for

    _grow(World(fresh_z), 1)
    now = [utc_now()]
    z = Zizhi(fresh_z.db, fresh_z.workflows, clock=lambda: now[0])
    with receiving() as receiver:
        hook = subscriptions.create_subscription(
            z, CLI, LOCAL, url=receiver.url, events=["audit.checkpoint"]
        )
        with dispatching(z) as dispatcher:
            dispatcher.checkpoint_round()
            dispatcher.checkpoint_round()  # looked at again at once: nothing new
            now[0] += timedelta(days=1, minutes=1)
            dispatcher.checkpoint_round()  # not yet looked at again
            dispatcher._next_checkpoint_look = 0.0  # the next look, a day later
            dispatcher.checkpoint_round()
            dispatcher.run_until_idle()
        wait_for(lambda: len(receiver.seen) == 2)
        receiver.verified(str(hook.secret))
    recorded = engine.query_events(z, CLI, engine.EventFilter(type="audit.checkpoint")).items
    assert len(recorded) == 2
    sizes = [e.data["tree_size"] for e in recorded]
    assert sizes[0] < sizes[1]  # the first checkpoint event is itself in the second tree
    # What a webhook receiver kept verifies against the history later.
    kept = {"format": "zizhi-checkpoint/1", **recorded[0].data}
    assert engine.verify_checkpoint(z, CLI, kept).ok


def test_zizhi_checkpoint_prints_a_checkpoint_verify_accepts(
    fresh_z: Zizhi, tmp_path: Path
) -> None:
    _grow(World(fresh_z), 1)
    made = _cli(fresh_z, "checkpoint")
    assert made.returncode == 0, made.stderr
    kept = tmp_path / "kept.json"
    kept.write_text(made.stdout, encoding="utf-8")
    assert json.loads(made.stdout)["tree_size"] > 0
    checked = _cli(fresh_z, "verify", "--checkpoint", str(kept))
    assert checked.returncode == 0, checked.stdout + checked.stderr
