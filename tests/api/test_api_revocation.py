"""A token is remembered per process, yet a revocation holds on the very next request —
whether it was revoked through this app, another app instance, or another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import engine
from api.app import create_app
from api.settings import Settings
from engine.store.db import Database
from engine.store.uow import Zizhi
from tests.api.client import Api


def _token_id(api: Api, token: str) -> str:
    me = api.ok(api.get("/api/v1/me", token))
    assert me["id"].startswith("token:")
    return str(me["id"].removeprefix("token:"))


def _refused(api: Api, token: str) -> None:
    for path in ("/api/v1/me", "/api/v1/projects"):
        answer = api.get(path, token)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "unauthenticated"


@pytest.fixture
def other_instance(z: Zizhi) -> Iterator[Api]:
    """A second app on a second engine over the same database, as another server would be."""
    url = z.db.url.render_as_string(hide_password=False)
    other = Zizhi(Database(url), z.workflows)
    try:
        with TestClient(create_app(other, Settings()), raise_server_exceptions=False) as client:
            yield Api(client, other)
    finally:
        other.db.dispose()


def test_a_revoked_token_is_refused_on_the_very_next_request(api: Api) -> None:
    community = api.community()
    token = api.token("committee", communities=[community])
    for _ in range(3):  # known to this process by now
        api.ok(api.get("/api/v1/projects", token, community_id=community))
    token_id = _token_id(api, token)
    api.ok(api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.auth(api.admin)))
    _refused(api, token)


def test_a_token_revoked_through_another_app_instance_is_refused_here_at_once(
    api: Api, other_instance: Api
) -> None:
    community = api.community()
    token = api.token("committee", communities=[community])
    token_id = _token_id(api, token)
    for _ in range(3):
        api.ok(api.get("/api/v1/me", token))
        other_instance.ok(other_instance.get("/api/v1/me", token))
    revoked = other_instance.client.delete(
        f"/api/v1/tokens/{token_id}", headers=other_instance.auth(other_instance.admin)
    )
    assert revoked.status_code == 200, revoked.text
    _refused(api, token)
    _refused(other_instance, token)


def test_a_token_revoked_by_another_process_is_refused_here_at_once(api: Api, z: Zizhi) -> None:
    community = api.community()
    token = api.token("committee", communities=[community])
    token_id = _token_id(api, token)
    api.ok(api.get("/api/v1/me", token))
    script = textwrap.dedent(
        """
        import sys
        import engine, workflows
        from engine.model import CLI
        from engine.store.db import Database
        from engine.store.uow import Zizhi
        z = Zizhi(Database(sys.argv[1]), workflows.load_registry())
        engine.revoke_token(z, CLI, sys.argv[2])
        z.db.dispose()
        """
    )
    url = z.db.url.render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", script, url, token_id], check=True, timeout=120)
    _refused(api, token)


def test_a_known_token_is_authenticated_without_reading_its_row_again(api: Api, z: Zizhi) -> None:
    community = api.community()
    token = api.token("committee", communities=[community])
    first = engine.authenticate_token(z, token)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(z.db.engine, "before_cursor_execute", seen)
    try:
        assert engine.cached_principal(z, token) == first
        assert engine.authenticate_token(z, token) == first
    finally:
        sa.event.remove(z.db.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "api_tokens" in s]


def test_a_token_that_never_existed_is_not_remembered(api: Api, z: Zizhi) -> None:
    forged = engine.TOKEN_PREFIX + "x" * 40
    for _ in range(2):
        assert api.get("/api/v1/me", forged).status_code == 401
    assert engine.cached_principal(z, forged) is None
