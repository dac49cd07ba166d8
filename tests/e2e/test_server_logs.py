"""What a running server writes to its logs holds no token, password or resident's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.server import cli, serve
from tests.webhooks import receiving, wait_for

NAME, PHONE, PASSWORD = "李秘密", "13912345678", "口令绝不能出现在日志里-2026"


def _post(base: str, path: str, token: str, body: Any, status: int) -> Any:
    response = httpx.post(base + path, headers={"Authorization": f"Bearer {token}"}, json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_the_server_log_holds_no_secret_and_no_personal_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    output: list[str] = []
    monkeypatch.setenv("ZIZHI_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("ZIZHI_WEBHOOK_POLL_INTERVAL", "0.1")
    with (
        receiving() as receiver,
        serve(url, log_level="debug", output=output) as (base, printed),
    ):
        admin = next(line for line in printed if line.startswith("zz_"))
        _post(
            base,
            "/api/v1/communities",
            admin,
            {
                "id": "lihe",
                "name": "里河社区",
                "street": "金阊街道",
                "district": "姑苏区",
                "kind": "urban",
            },
            201,
        )
        committee = _post(
            base,
            "/api/v1/tokens",
            admin,
            {"name": "里河居委会", "role": "committee", "communities": ["lihe"]},
            201,
        )["token"]
        hook = _post(
            base,
            "/api/v1/webhooks",
            admin,
            {"url": receiver.url + "?key=ROBOTKEY", "events": ["*"]},
            201,
        )
        demand = {"content": "楼道灯坏了", "resident": NAME, "contact": PHONE}
        _post(base, "/api/v1/communities/lihe/demands", committee, demand, 201)
        _post(base, "/api/v1/communities/lihe/demands", committee, {**demand, "bogus": 1}, 422)
        _post(base, "/api/v1/communities/lihe/demands", admin + "x", demand, 401)
        made = cli(
            url,
            "user",
            "create",
            "--username",
            "gao",
            "--role",
            "auditor",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert made.returncode == 0, made.stderr
        output += [made.stdout, made.stderr]
        wait_for(lambda: any(m.json()["type"] == "demand.created" for m in receiver.taken))
    logs = "\n".join([*printed, *output])
    assert "/api/v1/communities/lihe/demands" in logs  # the requests were logged …
    for secret in (committee, NAME, PHONE, PASSWORD, hook["secret"], "ROBOTKEY"):
        assert secret not in logs  # … and nothing they carried
    sent = b"".join(m.body for m in receiver.taken).decode()
    assert NAME not in sent and PHONE not in sent  # nor did any webhook message
    assert logs.count(admin) == 1  # printed once, at first start, as the README says
