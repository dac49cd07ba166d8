"""Webhooks from the command line and from a running ``zizhi serve``, as an operator uses them."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from engine import Zizhi
from tests.e2e.server import cli, serve
from tests.reliability.test_webhook_crash import worker as worker_process
from tests.webhooks import receiving, wait_for


@pytest.fixture
def url(fresh_z: Zizhi, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ZIZHI_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("ZIZHI_WEBHOOK_POLL_INTERVAL", "0.1")
    fresh_z.db.dispose()  # only the processes under test use it
    return fresh_z.db.url.render_as_string(hide_password=False)


def test_webhook_commands_show_the_secret_once_and_refuse_bad_input(url: str) -> None:
    made = cli(url, "webhook", "create", "--url", "http://127.0.0.1:9/h?key=k", "--event", "*")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    listed = cli(url, "webhook", "list")
    assert listed.returncode == 0 and secret not in listed.stdout and "key=k" not in listed.stdout
    webhook_id = listed.stdout.split("\t")[0]
    rotated = cli(url, "webhook", "rotate", webhook_id)
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret
    assert cli(url, "webhook", "disable", webhook_id).returncode == 0
    assert "停用" in cli(url, "webhook", "list").stdout
    assert cli(url, "webhook", "delete", webhook_id).returncode == 0
    bad = cli(url, "webhook", "create", "--url", "http://169.254.169.254/", "--event", "x.y")
    assert bad.returncode == 2 and "validation_error" in bad.stderr
    assert "url" in bad.stderr and "events" in bad.stderr


def test_serve_sends_webhooks_by_default(url: str) -> None:
    with receiving() as receiver, serve(url) as (base, printed):
        admin = {"Authorization": f"Bearer {printed[-1]}"}
        made = httpx.post(
            f"{base}/api/v1/webhooks",
            headers=admin,
            json={"url": receiver.url, "events": ["community.created"]},
        )
        assert made.status_code == 201, made.text
        community = {"id": "lihe", "name": "里河社区", "street": "金阊街道", "district": "姑苏区"}
        created = httpx.post(
            f"{base}/api/v1/communities", headers=admin, json={**community, "kind": "urban"}
        )
        assert created.status_code == 201, created.text
        wait_for(lambda: len(receiver.taken) == 1)
        (body,) = receiver.verified(made.json()["secret"])
    assert body["type"] == "community.created" and body["data"]["community_id"] == "lihe"


def test_serve_with_no_dispatcher_and_a_worker_alongside_sends_once(url: str) -> None:
    with receiving() as receiver, serve(url, "--no-dispatcher") as (base, printed):
        admin = {"Authorization": f"Bearer {printed[-1]}"}
        made = httpx.post(
            f"{base}/api/v1/webhooks",
            headers=admin,
            json={"url": receiver.url, "events": ["webhook.test"]},
        )
        hook = made.json()["id"]
        httpx.post(f"{base}/api/v1/webhooks/{hook}/ping", headers=admin)
        worker = worker_process(url)
        try:
            wait_for(lambda: len(receiver.taken) == 1)
        finally:
            worker.terminate()
            worker.communicate(timeout=30)
        page = httpx.get(f"{base}/api/v1/webhooks/{hook}/deliveries", headers=admin).json()
    assert [d["status"] for d in page["items"]] == ["delivered"]
    assert [m.json()["type"] for m in receiver.taken] == ["webhook.test"]
