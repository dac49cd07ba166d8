"""The receiver printed in docs/webhooks.md takes what Zizhi signs and refuses the rest."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.rules.webhooks.signing import headers, new_secret

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_documented_receiver_verifies_signed_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None and len(code.group(1).strip().splitlines()) <= 25
    secret = new_secret()
    monkeypatch.setenv("ZIZHI_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    body = json.dumps({"type": "webhook.test", "data": {"summary": "自治推送测试"}})
    signed = dict(headers([secret], "msg_1", int(time.time()), body))
    with TestClient(namespace["app"]) as client:
        assert client.post("/zizhi", content=body, headers=signed).status_code == 200
        assert client.post("/zizhi", content=body, headers=signed).status_code == 200
        forged = dict(headers([new_secret()], "msg_2", int(time.time()), body))
        assert client.post("/zizhi", content=body, headers=forged).status_code == 400
    assert capsys.readouterr().out.count("webhook.test 自治推送测试") == 1
