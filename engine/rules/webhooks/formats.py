"""How a message is put on the wire for each subscription format.

* ``standard``: the message's JSON as it is (Standard Webhooks).
* ``wecom_bot``: a WeCom (企业微信) group robot's markdown message, the summary in Chinese.
* ``dingtalk_bot``: the same for a DingTalk (钉钉) group robot; when the robot is set to
  "加签", its secret signs the URL (``timestamp`` and ``sign`` query parameters).

Both robots answer HTTP 200 with ``{"errcode": 0, …}`` when they took the message; any other
``errcode`` is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote_plus

FORMATS = ("standard", "wecom_bot", "dingtalk_bot")
BOTS = ("wecom_bot", "dingtalk_bot")
TITLE = "自治通知"


def wire_body(format: str, payload: str) -> str:
    if format == "standard":
        return payload
    message = json.loads(payload)
    summary = message["data"].get("summary") or message["type"]
    if format == "wecom_bot":
        content: dict[str, Any] = {"content": f"**{TITLE}**\n{summary}"}
        return json.dumps({"msgtype": "markdown", "markdown": content}, ensure_ascii=False)
    text = {"title": TITLE, "text": f"#### {TITLE}\n{summary}"}
    return json.dumps({"msgtype": "markdown", "markdown": text}, ensure_ascii=False)


def dingtalk_sign(bot_secret: str, timestamp_ms: int) -> str:
    """DingTalk's "加签": base64 HMAC-SHA256 of "{timestamp}\\n{secret}", URL-encoded."""
    signed = f"{timestamp_ms}\n{bot_secret}".encode()
    digest = hmac.new(bot_secret.encode(), signed, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, bot_secret: str | None, timestamp_ms: int) -> str:
    if not bot_secret:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(bot_secret, timestamp_ms)}"


def bot_refused(format: str, text: str) -> str | None:
    """For a robot: why its (2xx) answer is a failure, or None when it took the message."""
    if format not in BOTS:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        return "机器人应答不是 JSON"
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        code = answer.get("errcode") if isinstance(answer, dict) else None
        return f"机器人拒收（errcode={code}）"
    return None


def yuan(fen: int) -> str:
    """12345 → ¥123.45 (as a community worker reads money)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"
