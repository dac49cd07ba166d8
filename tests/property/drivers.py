"""Two ways to drive Zizhi for the model-based test: the engine directly, or HTTP.

Both answer the same question the same way: ``Outcome(code, body)`` where ``code`` is None
for success or the refusal's stable code, so one reference model checks both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

import engine
from engine.errors import ZizhiError
from engine.model import CLI, IdempotencyKey, Principal, Role
from engine.store.uow import Zizhi
from engine.usecases.tokens import create_token
from tests.factories import happy_steps


@dataclass(frozen=True)
class Outcome:
    code: str | None  # None: done
    body: dict[str, Any] | None = None


class Driver(Protocol):
    def community(self, community_id: str, kind: str) -> None: ...

    def open(self, community_id: str, workflow: str) -> int: ...

    def demand(self, project_id: int) -> Outcome: ...

    def fire(
        self, project_id: int, action: str, data: dict[str, Any], *, street: bool, key: str | None
    ) -> Outcome: ...

    def expense(self, project_id: int, data: dict[str, Any], key: str | None) -> Outcome: ...

    def allocate(self, community_id: str, fund: str, year: int, amount: int) -> Outcome: ...

    def project(self, project_id: int) -> dict[str, Any]: ...

    def funds(self, community_id: str, year: int) -> dict[str, dict[str, Any]]: ...

    def advance(self, project_id: int, workflow: str, state: str, to_state: str) -> None:
        """Fire the happy path's actions from ``state`` until the project reaches ``to_state``
        (a demand first where the path closes the collection), each one accepted."""
        for action, data in happy_steps(workflow, state, to_state):
            if action == "close_collection":
                assert self.demand(project_id).code is None
            done = self.fire(project_id, action, data, street=action == "street_approve", key=None)
            assert done.code is None, (action, done)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


class EngineDriver(Driver):
    def __init__(self, z: Zizhi) -> None:
        self.z = z
        self.committees: dict[str, Principal] = {}
        self.officers: dict[str, Principal] = {}
        self.where: dict[int, str] = {}

    def community(self, community_id: str, kind: str) -> None:
        engine.create_community(
            self.z,
            CLI,
            id=community_id,
            name=community_id,
            street=f"{community_id}-街道",
            district="姑苏区",
            kind=kind,
        )
        self.committees[community_id] = Principal(
            id=f"token:k-{community_id}",
            name="居委会",
            role=Role.committee,
            communities=frozenset({community_id}),
        )
        self.officers[community_id] = Principal(
            id=f"token:s-{community_id}",
            name="街道",
            role=Role.street,
            streets=frozenset({f"{community_id}-街道"}),
        )

    def _run(self, call: Any) -> Outcome:
        try:
            result = call()
        except ZizhiError as exc:
            return Outcome(exc.code)
        return Outcome(None, _plain(result))

    def open(self, community_id: str, workflow: str) -> int:
        view = engine.open_project(
            self.z,
            self.committees[community_id],
            community_id=community_id,
            workflow=workflow,
            title="模型测试",
            category="居民自治类",
        )
        self.where[view.id] = community_id
        return view.id

    def demand(self, project_id: int) -> Outcome:
        committee = self.committees[self.where[project_id]]
        return self._run(
            lambda: engine.add_to_project(
                self.z, committee, project_id, {"content": "需求", "resident": "居民"}
            )
        )

    def fire(
        self, project_id: int, action: str, data: dict[str, Any], *, street: bool, key: str | None
    ) -> Outcome:
        community = self.where[project_id]
        actor = self.officers[community] if street else self.committees[community]
        idem = (
            None
            if key is None
            else IdempotencyKey(actor.id, key, _digest(project_id, action, data))
        )
        return self._run(
            lambda: engine.fire(self.z, actor, project_id, action, data, idempotency=idem)
        )

    def expense(self, project_id: int, data: dict[str, Any], key: str | None) -> Outcome:
        committee = self.committees[self.where[project_id]]
        idem = None if key is None else IdempotencyKey(committee.id, key, _digest(project_id, data))
        return self._run(
            lambda: engine.record_expense(self.z, committee, project_id, data, idempotency=idem)
        )

    def allocate(self, community_id: str, fund: str, year: int, amount: int) -> Outcome:
        return self._run(
            lambda: engine.set_allocation(self.z, CLI, community_id, fund, year, amount)
        )

    def project(self, project_id: int) -> dict[str, Any]:
        return _plain(engine.get_project(self.z, CLI, project_id))

    def funds(self, community_id: str, year: int) -> dict[str, dict[str, Any]]:
        return {f.fund: _plain(f) for f in engine.funds(self.z, CLI, community_id, year=year)}


class HttpDriver(Driver):
    def __init__(self, z: Zizhi, client: TestClient) -> None:
        self.client = client
        self.admin = create_token(z, CLI, name="模型管理员", role="admin").token or ""
        self.z = z
        self.committees: dict[str, str] = {}
        self.officers: dict[str, str] = {}
        self.where: dict[int, str] = {}

    def _call(
        self, method: str, path: str, token: str, body: Any = None, key: str | None = None
    ) -> Outcome:
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = self.client.request(method, path, headers=headers, json=body)
        assert response.status_code < 500, response.text
        payload = response.json()
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            return Outcome(payload["code"])
        return Outcome(None, payload)

    def community(self, community_id: str, kind: str) -> None:
        street = f"{community_id}-街道"
        assert (
            self._call(
                "POST",
                "/api/v1/communities",
                self.admin,
                {
                    "id": community_id,
                    "name": community_id,
                    "street": street,
                    "district": "姑苏区",
                    "kind": kind,
                },
            ).code
            is None
        )
        for role, store, scope in (
            ("committee", self.committees, {"communities": [community_id]}),
            ("street", self.officers, {"streets": [street]}),
        ):
            made = self._call(
                "POST", "/api/v1/tokens", self.admin, {"name": role, "role": role, **scope}
            )
            assert made.body is not None
            store[community_id] = made.body["token"]

    def open(self, community_id: str, workflow: str) -> int:
        made = self._call(
            "POST",
            "/api/v1/projects",
            self.committees[community_id],
            {
                "community_id": community_id,
                "workflow": workflow,
                "title": "模型测试",
                "category": "居民自治类",
            },
        )
        assert made.body is not None, made
        self.where[made.body["id"]] = community_id
        return int(made.body["id"])

    def demand(self, project_id: int) -> Outcome:
        return self._call(
            "POST",
            f"/api/v1/projects/{project_id}/demands",
            self.committees[self.where[project_id]],
            {"content": "需求", "resident": "居民"},
        )

    def fire(
        self, project_id: int, action: str, data: dict[str, Any], *, street: bool, key: str | None
    ) -> Outcome:
        community = self.where[project_id]
        token = self.officers[community] if street else self.committees[community]
        return self._call(
            "POST", f"/api/v1/projects/{project_id}/actions/{action}", token, data, key
        )

    def expense(self, project_id: int, data: dict[str, Any], key: str | None) -> Outcome:
        return self._call(
            "POST",
            f"/api/v1/projects/{project_id}/expenses",
            self.committees[self.where[project_id]],
            data,
            key,
        )

    def allocate(self, community_id: str, fund: str, year: int, amount: int) -> Outcome:
        return self._call(
            "PUT",
            f"/api/v1/communities/{community_id}/funds/{fund}/{year}",
            self.admin,
            {"allocated_fen": amount},
        )

    def project(self, project_id: int) -> dict[str, Any]:
        got = self._call("GET", f"/api/v1/projects/{project_id}", self.admin)
        assert got.body is not None
        return got.body

    def funds(self, community_id: str, year: int) -> dict[str, dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/communities/{community_id}/funds",
            params={"year": year},
            headers={"Authorization": f"Bearer {self.admin}"},
        )
        return {f["fund"]: f for f in response.json()}


def _plain(view: Any) -> dict[str, Any]:
    """A view dataclass as the same JSON-ish dict the API would answer."""
    return dict(TypeAdapter(type(view)).dump_python(view, mode="json"))
