"""``zizhi serve --workers N``: several processes answer one port, and agree on revocations."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx2 as httpx
import pytest

import engine
from api.serving import NoDelayProtocol
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.e2e.server import serve
from tests.factories import new_id


def _fresh_connection(base: str, token: str, path: str) -> httpx.Response:
    # A new connection per request, so that requests land on different workers.
    with httpx.Client(base_url=base, timeout=60) as client:
        return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_two_workers_answer_and_a_revoked_token_is_refused_by_every_worker(
    fresh_z: Zizhi,
) -> None:
    community = new_id()
    engine.create_community(
        fresh_z,
        CLI,
        id=community,
        name="多进程社区",
        street="金阊街道",
        district="姑苏区",
        kind="urban",
    )
    admin = engine.create_token(fresh_z, CLI, name="管理员", role="admin").token or ""
    made = engine.create_token(
        fresh_z, CLI, name="居委会", role="committee", communities=[community]
    )
    token = made.token or ""
    url = fresh_z.db.url.render_as_string(hide_password=False)
    with serve(url, "--workers", "2", "--no-dispatcher") as (base, _):
        for _ in range(8):  # every worker has seen (and cached) the token by now
            me = _fresh_connection(base, token, "/api/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["communities"] == [community]
        with httpx.Client(base_url=base, timeout=60) as client:
            revoked = client.delete(
                f"/api/v1/tokens/{made.id}", headers={"Authorization": f"Bearer {admin}"}
            )
        assert revoked.status_code == 200, revoked.text
        for _ in range(8):
            refused = _fresh_connection(base, token, "/api/v1/me")
            assert refused.status_code == 401
            assert refused.json()["code"] == "unauthenticated"


class _Transport(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


def test_every_connection_is_served_with_nagle_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listening socket of ``--workers`` is made with protocol 0, as uvicorn binds it:
    asyncio then leaves TCP_NODELAY off on the connections it accepts, and each response
    would wait for the client's delayed ACK."""
    base = NoDelayProtocol.__mro__[1]
    monkeypatch.setattr(base, "connection_made", lambda self, transport: None)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                protocol = NoDelayProtocol.__new__(NoDelayProtocol)
                protocol.connection_made(_Transport(accepted))
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
