"""Webhooks end to end on both databases: the outbox written with the change, the dispatcher
sending it signed (verified by the Standard Webhooks reference library), retries that lose
nothing, and receivers that cannot stall it."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import jsonschema_rs
import pytest
import sqlalchemy as sa
import trustme

from engine import (
    CLI,
    Database,
    Outcome,
    UrlGuard,
    Zizhi,
    claim_deliveries,
    fire,
    record_attempt,
    subscriptions,
)
from engine import deliveries as delivery_log
from engine.errors import FundCapExceeded
from engine.rules.workflow import WorkflowRegistry
from engine.store import outbox
from engine.store.tables import events
from engine.store.webhook_tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)
from engine.usecases import webhooks as webhook_usecases
from tests.conftest import DatabaseFactory
from tests.factories import VOTE, World
from tests.webhooks import LOCAL, Clock, Received, dispatching, receiving, wait_for


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hz(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry, clock: Clock
) -> Iterator[Zizhi]:
    """A database of its own: a dispatcher sends whatever is due in the whole database.

    Its connections are closed at the end, so that tests do not pile up idle connections
    on the PostgreSQL server."""
    z = Zizhi(databases.new(backend), registry, clock=clock)
    yield z
    z.db.dispose()


def subscribe(z: Zizhi, url: str, events: list[str] | None = None, **options: Any) -> Any:
    return subscriptions.create_subscription(
        z, CLI, LOCAL, url=url, events=events or ["*"], **options
    )


def deliveries(z: Zizhi) -> list[Any]:
    with z.read() as conn:
        return list(conn.execute(sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


def test_a_transition_is_sent_signed_with_its_event_its_project_and_no_resident(
    hz: Zizhi,
) -> None:
    world = World(hz)
    community = world.community()
    with receiving() as receiver:
        hook = subscribe(hz, receiver.url, ["project.*", "ledger.*", "demand.*"])
        project = world.advance(world.project(community), "implementation", budget_fen=1_234_567)
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
        bodies = receiver.verified(hook.secret)
    with hz.read() as conn:
        recorded = {
            row.id: row
            for row in conn.execute(sa.select(events).where(events.c.chain == community))
        }
    wanted = [
        e for e in recorded.values() if e.type.split(".")[0] in ("project", "ledger", "demand")
    ]
    assert sorted(b["data"]["event_id"] for b in bodies) == sorted(e.id for e in wanted)
    schemas = {t["type"]: t["schema"] for t in subscriptions.event_types()}
    for body in bodies:
        jsonschema_rs.validator_for(schemas[body["type"]]).validate(body)
        event = recorded[body["data"]["event_id"]]
        assert body["type"] == event.type
        assert (body["data"]["chain"], body["data"]["seq"], body["data"]["hash"]) == (
            event.chain,
            event.seq,
            event.hash,
        )
    approve = next(
        b
        for b in bodies
        if b["type"] == "project.transitioned" and b["data"]["details"]["action"] == "approve"
    )
    assert approve["data"]["project"]["id"] == project.id
    assert approve["data"]["project"]["state"] == "implementation"
    assert approve["data"]["project"]["state_label"]
    assert "预留 ¥12,345.67" in approve["data"]["summary"]
    everything = b"".join(m.body for m in receiver.taken).decode()
    assert "王老伯" not in everything and "通道堵塞" not in everything
    assert {m.id for m in receiver.taken} == {d.message_id for d in deliveries(hz)}
    assert all(d.status == "delivered" for d in deliveries(hz))


def test_a_rolled_back_transition_writes_and_sends_nothing(hz: Zizhi) -> None:
    world = World(hz)
    community = world.community()
    with receiving() as receiver:
        subscribe(hz, receiver.url, ["project.transitioned", "ledger.*"])
        big = world.advance(world.project(community), "review", budget_fen=5_000_000)
        small = world.advance(world.project(community), "review", budget_fen=1_000)
        fire(hz, world.committee(community), small.id, "approve", VOTE)
        before = len(deliveries(hz))
        # The transition's event is appended before the reservation fails: all rolls back.
        with pytest.raises(FundCapExceeded):
            fire(hz, world.committee(community), big.id, "approve", VOTE)
        assert len(deliveries(hz)) == before
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
    sent = [m.json() for m in receiver.taken]
    assert all(
        b["data"]["project_id"] != big.id or b["data"]["details"].get("action") != "approve"
        for b in sent
    )
    assert len(sent) == before


def test_a_project_change_with_no_active_subscription_sends_the_outbox_no_statement(
    hz: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock statement reads the active count: with none, the hook reads nothing itself;
    once a subscription is active, the hook reads the state and queues the change's events."""
    world = World(hz)
    community = world.community()
    first, second = world.project(community), world.project(community)
    reads: list[str] = []
    real = outbox._STATE

    class Counting:
        def first(self, conn: Any, params: Any) -> Any:
            reads.append("webhook_state")
            return real.first(conn, params)

    monkeypatch.setattr(outbox, "_STATE", Counting())
    fire(hz, world.committee(community), first.id, "cancel", {"reason": "撤销"})
    assert reads == [] and deliveries(hz) == []
    with receiving() as receiver:
        subscribe(hz, receiver.url, ["project.transitioned"])
        reads.clear()  # subscribing is a change on the system chain: it read the state
        fire(hz, world.committee(community), second.id, "cancel", {"reason": "撤销"})
    assert reads == ["webhook_state"]
    assert [d.type for d in deliveries(hz)] == ["project.transitioned"]


def test_a_receiver_that_fails_then_is_down_then_recovers_gets_every_event_once(
    hz: Zizhi, clock: Clock
) -> None:
    world = World(hz)
    community = world.community()
    answers = iter([500, 503, 400])

    def flaky(message: Received) -> tuple[int, dict[str, str], bytes]:
        return next(answers, 200), {}, b"{}"

    with receiving(flaky) as receiver:
        hook = subscribe(hz, receiver.url, community_id=community)
        world.advance(world.project(community), "planning")
        with dispatching(hz, retry_schedule=(60, 60, 60, 60, 60, 60)) as dispatcher:
            dispatcher.run_until_idle()  # the first attempts: three fail
            receiver.stop()  # then the receiver is down
            clock.advance(minutes=2)
            dispatcher.run_until_idle()
            port = receiver.port
            world.advance(world.project(community), "screening")  # more while it is down
            dispatcher.run_until_idle()
            receiver.port = port
            receiver.start()  # it recovers
            for _ in range(3):
                clock.advance(minutes=2)
                dispatcher.run_until_idle()
        receiver.verified(hook.secret)
    sent = deliveries(hz)
    assert sent and all(d.status == "delivered" for d in sent)
    accepted = [m.id for m in receiver.taken]
    assert sorted(accepted) == sorted(d.message_id for d in sent)  # each id once accepted
    assert any(d.attempts > 1 for d in sent)
    with hz.read() as conn:
        assert conn.execute(sa.select(webhook_subscriptions.c.failing_since)).scalar_one() is None


def test_a_410_disables_the_subscription_and_history_says_so(hz: Zizhi) -> None:
    world = World(hz)
    with receiving(lambda m: (410, {}, b"gone")) as receiver:
        hook = subscribe(hz, receiver.url, ["community.*"])
        world.community()
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
    view = subscriptions.get_subscription(hz, CLI, hook.id)
    assert not view.active and "410" in (view.disabled_reason or "")
    with hz.read() as conn:
        disabled = conn.execute(sa.select(events).where(events.c.type == "webhook.disabled")).one()
    assert json.loads(disabled.data)["webhook_id"] == hook.id
    assert disabled.actor == "dispatcher"
    assert hook.secret not in disabled.data


def test_a_429_waits_for_retry_after(hz: Zizhi, clock: Clock) -> None:
    world = World(hz)
    with receiving(lambda m: (429, {"Retry-After": "7200"}, b"slow down")) as receiver:
        subscribe(hz, receiver.url, ["community.*"])
        world.community()
        with dispatching(hz, retry_schedule=(5,)) as dispatcher:
            dispatcher.run_until_idle()
    (delivery,) = deliveries(hz)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at >= clock() + sa_minutes(110)


def sa_minutes(minutes: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=minutes)


def test_a_subscription_failing_for_days_without_success_is_disabled(
    hz: Zizhi, clock: Clock
) -> None:
    world = World(hz)
    with receiving(lambda m: (500, {}, b"broken")) as receiver:
        hook = subscribe(hz, receiver.url, ["community.*"])
        world.community()
        with dispatching(hz, retry_schedule=(3600,) * 200) as dispatcher:
            dispatcher.run_until_idle()
            for _ in range(4):
                clock.advance(days=2)
                dispatcher.run_until_idle()
    view = subscriptions.get_subscription(hz, CLI, hook.id)
    assert not view.active and "5 天" in (view.disabled_reason or "")
    # Its messages are kept: enabling the subscription again resumes them.
    (delivery,) = deliveries(hz)
    assert delivery.status == "pending"


def test_exhausting_the_schedule_gives_up_and_redeliver_sends_the_same_id(
    hz: Zizhi, clock: Clock
) -> None:
    world = World(hz)
    broken = True

    def answer(message: Received) -> tuple[int, dict[str, str], bytes]:
        return (502 if broken else 204), {}, b""

    with receiving(answer) as receiver:
        hook = subscribe(hz, receiver.url, ["community.created"])
        world.community()
        with dispatching(hz, retry_schedule=(60,)) as dispatcher:
            dispatcher.run_until_idle()
            clock.advance(minutes=2)
            dispatcher.run_until_idle()
            (delivery,) = deliveries(hz)
            assert delivery.status == "failed" and delivery.attempts == 2
            broken = False
            delivery_log.redeliver(hz, CLI, hook.id, delivery.id)
            dispatcher.run_until_idle()
        receiver.verified(hook.secret)
    assert [m.id for m in receiver.seen] == [delivery.message_id] * 3
    assert [m.id for m in receiver.taken] == [delivery.message_id]
    page = delivery_log.list_deliveries(hz, CLI, hook.id)
    assert [a.outcome for a in page.items[0].attempt_log] == ["failure", "failure", "success"]
    assert page.items[0].attempt_log[0].status_code == 502


def test_ping_sends_a_test_message(hz: Zizhi) -> None:
    with receiving() as receiver:
        hook = subscribe(hz, receiver.url, ["project.created"])
        delivery_log.ping(hz, CLI, hook.id)
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
        (body,) = receiver.verified(hook.secret)
    assert body["type"] == "webhook.test"


def test_after_a_rotation_both_secrets_sign_for_a_day(hz: Zizhi, clock: Clock) -> None:
    world = World(hz)
    with receiving() as receiver:
        hook = subscribe(hz, receiver.url, ["community.created"])
        rotated = subscriptions.rotate_secret(hz, CLI, hook.id)
        assert rotated.secret and rotated.secret != hook.secret
        world.community()
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
            receiver.verified(hook.secret, rotated.secret)
            assert len(receiver.taken[0].headers["webhook-signature"].split(" ")) == 2
            clock.advance(hours=25)
            world.community()
            dispatcher.run_until_idle()
    assert len(receiver.taken[1].headers["webhook-signature"].split(" ")) == 1
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    Webhook(rotated.secret or "").verify(receiver.taken[1].body, receiver.taken[1].headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook.secret or "").verify(receiver.taken[1].body, receiver.taken[1].headers)


def test_filters_send_only_their_community_or_street(hz: Zizhi) -> None:
    world = World(hz)
    mine, other = world.community(street="金阊街道"), world.community(street="别的街道")
    with receiving() as by_community, receiving() as by_street:
        subscribe(hz, by_community.url, ["project.created"], community_id=mine)
        subscribe(hz, by_street.url, ["project.created"], street="金阊街道")
        world.project(mine)
        world.project(other)
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
    assert [m.json()["data"]["community_id"] for m in by_community.taken] == [mine]
    assert [m.json()["data"]["community_id"] for m in by_street.taken] == [mine]


def test_a_disabled_subscription_keeps_its_messages_until_enabled(hz: Zizhi) -> None:
    world = World(hz)
    with receiving() as receiver:
        hook = subscribe(hz, receiver.url, ["community.created"])
        subscriptions.disable_subscription(hz, CLI, hook.id)
        world.community()  # nothing is queued for a disabled subscription
        subscriptions.update_subscription(hz, CLI, LOCAL, hook.id, {"active": True})
        world.community()
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
    assert len(receiver.taken) == 1


def hang(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(20)


def huge(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-length", str(50 * 1024 * 1024))
    handler.end_headers()
    chunk = b"x" * 65536
    try:
        for _ in range(800):
            handler.wfile.write(chunk)
    except OSError:
        pass  # the dispatcher hung up, as it should


def test_a_hanging_receiver_a_50_mb_answer_and_a_redirect_loop_cannot_stall_the_dispatcher(
    hz: Zizhi,
) -> None:
    world = World(hz)
    with (
        receiving(lambda m: hang) as hanging,
        receiving(lambda m: huge) as flooding,
        receiving() as fine,
    ):
        looping_answer = (302, {"Location": "/hook"}, b"")
        with receiving(lambda m: looping_answer) as looping:
            hooks = {
                name: subscribe(hz, r.url, ["community.created"])
                for name, r in [
                    ("hanging", hanging),
                    ("flooding", flooding),
                    ("looping", looping),
                    ("fine", fine),
                ]
            }
            world.community()
            with dispatching(hz, timeout=1.0) as dispatcher:
                dispatcher.start()
                wait_for(lambda: len(fine.taken) == 1)
                wait_for(
                    lambda: all(
                        delivery_log.list_deliveries(hz, CLI, h.id).items[0].attempt_log
                        for h in hooks.values()
                    )
                )
    fine.verified(hooks["fine"].secret)
    errors = {
        name: delivery_log.list_deliveries(hz, CLI, h.id).items[0].attempt_log[0]
        for name, h in hooks.items()
    }
    assert "超时" in (errors["hanging"].error or "")
    assert "超过" in (errors["flooding"].error or "")
    assert len(errors["flooding"].response_excerpt or "") <= 1000
    assert errors["looping"].status_code == 302 and len(looping.seen) == 1
    assert errors["fine"].outcome == "success"


def test_a_name_that_resolves_to_loopback_is_refused_at_send_when_loopback_is_not_allowed(
    hz: Zizhi,
) -> None:
    # At subscription the name resolved to a public address; at send it resolves to
    # 127.0.0.1 (DNS rebinding). The guard checks the address it is about to connect to.
    from engine import UrlGuard

    answers = {"hooks.example.org": ["93.184.216.34"]}
    guard = UrlGuard(resolver=lambda host, port: answers[host])
    with receiving() as receiver:
        hook = subscriptions.create_subscription(
            hz, CLI, guard, url=f"http://hooks.example.org:{receiver.port}/hook", events=["*"]
        )
        answers["hooks.example.org"] = ["127.0.0.1"]
        World(hz).community()
        with dispatching(hz, guard=guard) as dispatcher:
            dispatcher.run_until_idle()
    assert receiver.seen == []
    log = delivery_log.list_deliveries(hz, CLI, hook.id).items[0].attempt_log
    assert log and "127.0.0.1" in (log[0].error or "")


def _https_receiver(ca: trustme.CA, name: str, seen_sni: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)

    def note(_sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        seen_sni.append(server_name)

    context.sni_callback = note
    return context


@pytest.mark.parametrize(
    ("certified", "trusted", "delivered"),
    [
        ("hooks.example.org", True, True),
        ("hooks.example.org", False, False),  # an authority nobody configured
        ("other.example.org", True, False),  # a certificate for another name
    ],
)
def test_https_goes_to_the_checked_address_with_the_name_in_sni_and_its_certificate_checked(
    hz: Zizhi, tmp_path: Any, certified: str, trusted: bool, delivered: bool
) -> None:
    # The name resolves (here) to 127.0.0.1; the dispatcher connects to that address, yet
    # TLS must still carry the name and check the certificate against it, never the IP.
    name = "hooks.example.org"
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    guard = UrlGuard(resolver=lambda host, port: ["127.0.0.1"], allowed=LOCAL.allowed)
    seen_sni: list[str | None] = []
    with receiving(tls=_https_receiver(ca, certified, seen_sni)) as receiver:
        url = f"https://{name}:{receiver.port}/hook"
        hook = subscriptions.create_subscription(hz, CLI, guard, url=url, events=["*"])
        World(hz).community()
        extra = {"ca_bundle": str(bundle)} if trusted else {}
        with dispatching(hz, guard=guard, **extra) as dispatcher:
            dispatcher.run_until_idle()
        bodies = receiver.verified(hook.secret or "")
    assert seen_sni and set(seen_sni) == {name}
    if delivered:
        assert bodies and {m.headers["host"] for m in receiver.taken} == {f"{name}:{receiver.port}"}
        assert all(d.status == "delivered" for d in deliveries(hz))
    else:
        assert bodies == [] and receiver.seen == []
        log = delivery_log.list_deliveries(hz, CLI, hook.id).items[0].attempt_log
        assert log and (log[0].error or "").startswith("连接失败")


def test_two_workers_never_send_the_same_attempt_twice(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    z = Zizhi(databases.new(backend), registry)
    world = World(z)
    with receiving() as receiver:
        hook = subscribe(z, receiver.url, ["community.created", "ledger.*"])
        for _ in range(40):
            world.community()
        twin = Zizhi(Database(str(z.db.url.render_as_string(hide_password=False))), registry)
        with dispatching(z, concurrency=8) as first, dispatching(twin, concurrency=8) as second:
            first.start()
            second.start()
            wait_for(lambda: all(d.status == "delivered" for d in deliveries(z)), timeout=120)
        twin.db.dispose()
        receiver.verified(hook.secret)
    z.db.dispose()
    ids = [m.id for m in receiver.seen]
    assert len(ids) == len(set(ids)) == len(deliveries(z)) == 40


@pytest.mark.parametrize("racing", [False, True])
def test_an_attempt_ending_as_its_subscription_is_deleted_leaves_no_orphan_log(
    hz: Zizhi, monkeypatch: pytest.MonkeyPatch, racing: bool
) -> None:
    """The attempt was claimed, then the subscription deleted — after it (``racing`` False)
    or while the attempt is being recorded (True: the delete holds its transaction open)."""
    hook = subscribe(hz, "http://127.0.0.1:9/hook", ["community.created"])
    World(hz).community()
    with hz.db.write() as conn:
        (claimed,) = claim_deliveries(
            conn, owner="w1", now=hz.clock(), lease=timedelta(minutes=1), limit=1, busy=[]
        )
        conn.commit()
    outcome = Outcome(False, 500, 3, "HTTP 500", "", retry_at=hz.clock())
    if racing:
        deleting, recorded = threading.Event(), threading.Event()
        changed = webhook_usecases._changed

        def slow_changed(change: Any, *args: Any, **kwargs: Any) -> None:
            deleting.set()  # the rows are deleted, the transaction still open
            recorded.wait(1.0)  # the attempt's record waits on the delete (it cannot finish)
            changed(change, *args, **kwargs)

        monkeypatch.setattr(webhook_usecases, "_changed", slow_changed)
        deleter = threading.Thread(
            target=subscriptions.delete_subscription, args=(hz, CLI, hook.id)
        )
        deleter.start()
        assert deleting.wait(30)

        def record() -> None:
            record_attempt(hz, claimed, "w1", outcome, disable_after=timedelta(days=5))
            recorded.set()

        recorder = threading.Thread(target=record)
        recorder.start()
        deleter.join(60)
        recorder.join(60)
        assert not deleter.is_alive() and not recorder.is_alive()
    else:
        subscriptions.delete_subscription(hz, CLI, hook.id)
        record_attempt(hz, claimed, "w1", outcome, disable_after=timedelta(days=5))
    with hz.read() as conn:
        assert conn.execute(sa.select(webhook_attempts)).all() == []
        assert conn.execute(sa.select(webhook_deliveries)).all() == []
