"""A ``zizhi worker`` SIGKILLed between sending a message and marking it sent: once its
lease runs out another worker sends the message again, with the same ``webhook-id``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler

from engine import CLI, Zizhi, deliveries, subscriptions
from tests.e2e.server import REPO
from tests.factories import World
from tests.webhooks import LOCAL, Received, receiving, wait_for


def worker(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "ZIZHI_DATABASE_URL": url,
            "ZIZHI_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ZIZHI_WEBHOOK_TIMEOUT": "120",
            "ZIZHI_WEBHOOK_LEASE_SECONDS": "2",
            "ZIZHI_WEBHOOK_POLL_INTERVAL": "0.1",
        },
    )


def test_a_worker_killed_mid_attempt_leaves_the_message_to_be_sent_again_with_its_id(
    fresh_z: Zizhi,
) -> None:
    z = fresh_z
    url = z.db.url.render_as_string(hide_password=False)
    released = threading.Event()
    first = True

    def answer(message: Received) -> object:
        nonlocal first
        if first:  # take the message, then never answer: the worker is killed meanwhile
            first = False

            def hold(handler: BaseHTTPRequestHandler) -> None:
                released.wait(60)

            return hold
        return 200, {}, b"ok"

    with receiving(answer) as receiver:
        hook = subscriptions.create_subscription(
            z, CLI, LOCAL, url=receiver.url, events=["community.created"]
        )
        World(z).community()
        doomed = worker(url)
        try:
            wait_for(lambda: len(receiver.seen) == 1, timeout=60)
            os.kill(doomed.pid, signal.SIGKILL)
        finally:
            if doomed.poll() is None:
                doomed.kill()
            doomed.communicate(timeout=30)  # reaps it and closes its pipe
            released.set()
        (delivery,) = deliveries.list_deliveries(z, CLI, hook.id).items
        assert delivery.status == "pending" and delivery.attempt_log == []
        successor = worker(url)
        try:
            wait_for(lambda: len(receiver.taken) == 1, timeout=60)
        finally:
            successor.terminate()
            _, errors = successor.communicate(timeout=30)
        assert successor.returncode == 0, errors
        receiver.verified(hook.secret or "")
    first_try, second_try = receiver.seen
    assert first_try.id == second_try.id == delivery.message_id
    assert first_try.body == second_try.body
    wait_for(lambda: deliveries.list_deliveries(z, CLI, hook.id).items[0].status == "delivered")
    z.db.dispose()
