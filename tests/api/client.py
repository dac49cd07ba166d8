"""A small driver for the HTTP API, so tests read like what a client does."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

import engine
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.factories import happy_steps, new_id


class Api:
    def __init__(self, client: TestClient, z: Zizhi) -> None:
        self.client = client
        self.admin = engine.create_token(z, CLI, name="测试管理员", role="admin").token or ""

    @staticmethod
    def auth(token: str | None, **headers: str) -> dict[str, str]:
        out = {"Authorization": f"Bearer {token}"} if token else {}
        return {**out, **headers}

    def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth(token), params=params or None)

    def post(
        self, path: str, token: str | None, body: Any = None, **headers: str
    ) -> httpx.Response:
        return self.client.post(
            path, headers=self.auth(token, **headers), json=body if body is not None else {}
        )

    def put(self, path: str, token: str | None, body: Any) -> httpx.Response:
        return self.client.put(path, headers=self.auth(token), json=body)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def community(self, *, kind: str = "urban", street: str | None = None) -> str:
        community_id = new_id()
        self.ok(
            self.post(
                "/api/v1/communities",
                self.admin,
                {
                    "id": community_id,
                    "name": f"社区{community_id}",
                    "street": street or new_id("街"),
                    "district": "姑苏区",
                    "kind": kind,
                },
            ),
            201,
        )
        return community_id

    def street_of(self, community_id: str) -> str:
        return str(self.ok(self.get(f"/api/v1/communities/{community_id}", self.admin))["street"])

    def token(
        self, role: str, *, communities: list[str] | None = None, streets: list[str] | None = None
    ) -> str:
        body = self.ok(
            self.post(
                "/api/v1/tokens",
                self.admin,
                {
                    "name": f"{role} 测试",
                    "role": role,
                    "communities": communities or [],
                    "streets": streets or [],
                },
            ),
            201,
        )
        return str(body["token"])

    def project(
        self, token: str, community_id: str, workflow: str = "self_governance"
    ) -> dict[str, Any]:
        return dict(
            self.ok(
                self.post(
                    "/api/v1/projects",
                    token,
                    {
                        "community_id": community_id,
                        "workflow": workflow,
                        "title": "楼道文化营造",
                        "category": "居民自治类",
                    },
                ),
                201,
            )
        )

    def act(
        self, token: str, project_id: int, action: str, body: Any = None, **headers: str
    ) -> httpx.Response:
        return self.post(f"/api/v1/projects/{project_id}/actions/{action}", token, body, **headers)

    def advance(
        self,
        token: str,
        project: dict[str, Any],
        to_state: str,
        *,
        street_token: str | None = None,
        budget_fen: int | None = None,
    ) -> dict[str, Any]:
        steps = happy_steps(project["workflow"], project["state"], to_state, budget_fen=budget_fen)
        for action, data in steps:
            if action == "close_collection":
                self.ok(
                    self.post(
                        f"/api/v1/projects/{project['id']}/demands",
                        token,
                        {"content": "楼道堆物", "resident": "高阿姨"},
                    ),
                    201,
                )
            actor = street_token if action == "street_approve" else token
            project = self.ok(self.act(actor or "", project["id"], action, data))
        assert project["state"] == to_state
        return project
