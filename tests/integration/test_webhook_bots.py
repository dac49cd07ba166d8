"""WeCom and DingTalk group robots: a Chinese markdown message, DingTalk's signed URL, and a
robot's ``errcode`` other than 0 taken as a failure — against local fake robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

import engine
from engine import CLI, Zizhi, deliveries, subscriptions
from engine.rules.workflow import WorkflowRegistry
from engine.store.tables import events
from tests.conftest import DatabaseFactory
from tests.factories import World, new_id
from tests.webhooks import LOCAL, Received, dispatching, receiving

BOT_SECRET = "SEC6a1c9f0e8d7b2a4c5e3f1d0b9a8c7e6f5d4c3b2a1908f7e6d5c4b3a2918f7e6"
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def hz(backend: str, databases: DatabaseFactory, registry: WorkflowRegistry) -> Iterator[Zizhi]:
    z = Zizhi(databases.new(backend), registry)
    yield z
    z.db.dispose()  # no idle connections left on the server


def approved_fire_lane(z: Zizhi) -> str:
    """里河社区「老新村消防通道整治」, approved by the council with ¥12,345.67 reserved."""
    community = new_id("lihe")
    engine.create_community(
        z, CLI, id=community, name="里河社区", street="金阊街道", district="姑苏区", kind="urban"
    )
    world = World(z)
    committee = world.committee(community)
    project = engine.open_project(
        z,
        committee,
        community_id=community,
        workflow="self_governance",
        title="老新村消防通道整治",
        category="居民自治类",
    )
    world.advance(project, "implementation", budget_fen=1_234_567, committee=committee)
    return community


def wecom(errcode: int) -> Any:
    def answer(message: Received) -> Answer:
        body = json.loads(message.body)
        fits = (
            urlsplit(message.path).path == "/cgi-bin/webhook/send"
            and parse_qs(urlsplit(message.path).query).get("key") == ["robot-key"]
            and body["msgtype"] == "markdown"
            and isinstance(body["markdown"]["content"], str)
        )
        reply = {"errcode": errcode if fits else 40008, "errmsg": "ok" if fits else "invalid"}
        return 200, {"content-type": "application/json"}, json.dumps(reply).encode()

    return answer


def dingtalk(secret: str) -> Any:
    def answer(message: Received) -> Answer:
        query = parse_qs(urlsplit(message.path).query)
        stamp = query.get("timestamp", ["0"])[0]
        wanted = base64.b64encode(
            hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        fresh = abs(time.time() * 1000 - int(stamp)) < 3_600_000
        body = json.loads(message.body)
        ok = (
            query.get("access_token") == ["robot-token"]
            and query.get("sign") == [wanted]
            and fresh
            and body["msgtype"] == "markdown"
            and body["markdown"]["title"]
        )
        reply = {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 310000, "errmsg": "sign"}
        return 200, {"content-type": "application/json"}, json.dumps(reply).encode()

    return answer


def test_a_wecom_group_robot_gets_the_approval_in_chinese(hz: Zizhi) -> None:
    with receiving(wecom(0)) as robot, receiving(wecom(93000)) as refusing:
        hook = subscriptions.create_subscription(
            hz,
            CLI,
            LOCAL,
            url=f"http://127.0.0.1:{robot.port}/cgi-bin/webhook/send?key=robot-key",
            events=["project.transitioned"],
            format="wecom_bot",
        )
        other = subscriptions.create_subscription(
            hz,
            CLI,
            LOCAL,
            url=f"http://127.0.0.1:{refusing.port}/cgi-bin/webhook/send?key=robot-key",
            events=["project.transitioned"],
            format="wecom_bot",
        )
        approved_fire_lane(hz)
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
        robot.verified(hook.secret or "")
    texts = [json.loads(m.body)["markdown"]["content"] for m in robot.taken]
    approval = "里河社区「老新村消防通道整治」评议通过"
    assert any(approval in t and "预留 ¥12,345.67" in t for t in texts)
    refused = deliveries.list_deliveries(hz, CLI, other.id).items
    assert refused and all(d.status == "pending" for d in refused)
    assert "errcode=93000" in (refused[0].attempt_log[0].error or "")
    # The robot's key is in its URL: history keeps the address without it.
    with hz.read() as conn:
        recorded = " ".join(conn.execute(sa.select(events.c.data)).scalars())
    assert "robot-key" not in recorded


def test_a_dingtalk_group_robot_gets_a_signed_url(hz: Zizhi) -> None:
    with receiving(dingtalk(BOT_SECRET)) as robot:
        base = f"http://127.0.0.1:{robot.port}/robot/send?access_token=robot-token"
        good = subscriptions.create_subscription(
            hz,
            CLI,
            LOCAL,
            url=base,
            events=["project.transitioned"],
            format="dingtalk_bot",
            bot_secret=BOT_SECRET,
        )
        wrong = subscriptions.create_subscription(
            hz,
            CLI,
            LOCAL,
            url=base,
            events=["project.transitioned"],
            format="dingtalk_bot",
            bot_secret="SECnotthesecret",
        )
        approved_fire_lane(hz)
        with dispatching(hz) as dispatcher:
            dispatcher.run_until_idle()
    delivered = deliveries.list_deliveries(hz, CLI, good.id).items
    assert delivered and all(d.status == "delivered" for d in delivered)
    ids = {d.message_id for d in delivered}
    for message in robot.taken:
        if message.id in ids:
            Webhook(good.secret or "").verify(message.body, message.headers)
    texts = [json.loads(m.body)["markdown"]["text"] for m in robot.taken]
    assert any("里河社区「老新村消防通道整治」评议通过" in t for t in texts)
    refused = deliveries.list_deliveries(hz, CLI, wrong.id).items
    assert all(d.status == "pending" for d in refused)
    assert "errcode=310000" in (refused[0].attempt_log[0].error or "")
