"""HTTP tests: the real app, through Starlette's TestClient, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from engine.store.uow import Zizhi
from tests.api.client import Api

MAX_BODY = 64 * 1024


@pytest.fixture
def client(z: Zizhi) -> Iterator[TestClient]:
    app = create_app(z, Settings(max_body_bytes=MAX_BODY))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api(client: TestClient, z: Zizhi) -> Api:
    return Api(client, z)
