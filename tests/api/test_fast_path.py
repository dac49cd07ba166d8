"""The fast path (``api.handoff.Plan``) answers exactly as FastAPI's own handler does.

The busiest routes — open a project, take a demand, fire an action, record an expense, read a
project — are answered by a plan worked out when the route is built, and any request the plan
would have to judge goes to FastAPI's handler. Here the same requests are sent down both
paths: a refusal (which changes nothing) must come back byte for byte the same, and a write
on two projects in the same state must answer alike but for ids and times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from api.handoff import _FALLBACK, OneHandOff, Plan, Router
from tests.api.client import Api
from tests.factories import VOTE

HOT = {
    ("POST", "/api/v1/projects"),
    ("GET", "/api/v1/projects/{project_id}"),
    ("POST", "/api/v1/projects/{project_id}/demands"),
    ("POST", "/api/v1/projects/{project_id}/expenses"),
    ("POST", "/api/v1/projects/{project_id}/actions/approve"),
    ("POST", "/api/v1/projects/{project_id}/actions/close_collection"),
    ("POST", "/api/v1/projects/{project_id}/actions/{action}"),
}


def _never() -> None:  # pragma: no cover - only its presence in the overrides counts
    raise AssertionError


@contextmanager
def standard_path(app: FastAPI) -> Iterator[None]:
    """FastAPI's own handler for every request meanwhile (the plan steps aside for any
    dependency override)."""
    app.dependency_overrides[_never] = _never
    try:
        yield
    finally:
        app.dependency_overrides.pop(_never)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the plan answered itself."""
    seen: list[str] = []
    solve = Plan._solve

    async def counted(self: Plan, request: Any) -> Any:
        values = await solve(self, request)
        if values is not _FALLBACK:
            seen.append(request.url.path)
        return values

    monkeypatch.setattr(Plan, "_solve", counted)
    return seen


def _app(api: Api) -> FastAPI:
    app = api.client.app
    assert isinstance(app, FastAPI)
    return app


def _routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}

    def walk(routes: Any) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update({(method, route.path): route for method in route.methods or ()})
            else:  # an included router
                inner = getattr(route, "original_router", route)
                walk(getattr(inner, "routes", ()))

    walk(app.routes)
    return found


def test_the_busiest_routes_have_a_plan(api: Api) -> None:
    routes = _routes(_app(api))
    assert HOT <= set(routes)
    for key in HOT:
        assert isinstance(routes[key], OneHandOff)
        assert Plan.of(routes[key]) is not None, key


def test_a_route_with_a_dependency_the_plan_does_not_know_has_none(api: Api) -> None:
    # A dependency outside api.deps.FROM_REQUEST sends every request of the route through
    # FastAPI's own handler.
    from fastapi import Depends

    def unknown() -> int:
        return 1

    def endpoint(value: int = Depends(unknown)) -> dict[str, int]:
        return {"value": value}

    route = OneHandOff("/x", endpoint, response_model=dict[str, int])
    assert Plan.of(route) is None


def _same(fast: httpx.Response, standard: httpx.Response) -> None:
    assert fast.status_code == standard.status_code, (fast.text, standard.text)
    assert fast.content == standard.content
    for name in ("content-type", "etag", "location", "allow"):
        assert fast.headers.get(name) == standard.headers.get(name), name


# Refusals: (method, path template, body, headers) with the committee's token unless a header
# says otherwise (None: left out); {p} is a project collecting demands, {r} one in review.
REFUSALS: list[tuple[str, str, Any, dict[str, str | None]]] = [
    ("POST", "/api/v1/projects/{p}/demands", {"content": "堆物"}, {"Authorization": None}),
    ("POST", "/api/v1/projects/{p}/demands", {"content": "堆物"}, {"Authorization": "Bearer x"}),
    ("POST", "/api/v1/projects/abc/demands", {"content": "堆物"}, {}),
    ("POST", "/api/v1/projects/0/demands", {"content": "堆物", "resident": "高"}, {}),
    ("POST", "/api/v1/projects/０７/demands", {"content": "堆物", "resident": "高"}, {}),
    ("POST", "/api/v1/projects/007/demands", {"content": "堆物", "resident": "高"}, {}),
    ("POST", "/api/v1/projects/9223372036854775808/demands", {"content": "堆物"}, {}),
    ("POST", "/api/v1/projects/999999/demands", {"content": "堆物", "resident": "高"}, {}),
    ("POST", "/api/v1/projects/{p}/demands", [1, 2], {}),
    ("POST", "/api/v1/projects/{p}/demands", {"content": "  "}, {}),
    ("POST", "/api/v1/projects/{p}/demands", {"content": "堆物", "extra": 1}, {}),
    ("POST", "/api/v1/projects/{p}/demands", {"content": "堆物"}, {"Idempotency-Key": "a b"}),
    ("POST", "/api/v1/projects/{p}/actions/approve", VOTE, {}),  # not in review yet
    ("POST", "/api/v1/projects/{r}/actions/approve", {"council_size": "9"}, {}),
    ("POST", "/api/v1/projects/{r}/actions/approve", VOTE, {"If-Match": '"1"'}),
    ("POST", "/api/v1/projects/{r}/actions/approve", VOTE, {"If-Match": 'W/"3"'}),
    ("POST", "/api/v1/projects/{r}/actions/approve", VOTE, {"If-Match": "'three'"}),
    ("POST", "/api/v1/projects/{r}/actions/fly", {}, {}),
    ("POST", "/api/v1/projects/{r}/actions/Fly", {}, {}),
    ("POST", "/api/v1/projects", {"community_id": "nowhere", "workflow": "self_governance"}, {}),
    ("POST", "/api/v1/projects", {"title": 1}, {}),
    ("POST", "/api/v1/projects", "not an object", {}),
    ("POST", "/api/v1/projects/{r}/expenses", {"amount_fen": "¥12,345.67"}, {}),
    ("POST", "/api/v1/projects/{r}/expenses", {"amount_fen": 100, "payee": "某公司"}, {}),
    ("GET", "/api/v1/projects/{p}?as_of=yesterday", None, {}),
    ("GET", "/api/v1/projects/1.0", None, {}),
    ("GET", "/api/v1/projects/999999", None, {}),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), REFUSALS)
def test_a_refusal_is_the_same_on_both_paths(
    api: Api, method: str, path: str, body: Any, headers: dict[str, str | None]
) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    collecting = api.project(committee, community)
    review = api.advance(committee, api.project(committee, community), "review", budget_fen=1_000)
    url = path.format(p=collecting["id"], r=review["id"])
    sent = {"Authorization": f"Bearer {committee}"}
    for name, value in headers.items():
        if value is None:
            sent.pop(name)
        else:
            sent[name] = value

    def send() -> httpx.Response:
        if method == "GET":
            return api.client.get(url, headers=sent)
        return api.client.post(url, headers=sent, json=body)

    fast = send()
    with standard_path(_app(api)):
        standard = send()
    assert fast.status_code >= 400, fast.text
    _same(fast, standard)


def test_a_body_that_is_not_plain_json_is_the_same_on_both_paths(api: Api) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    project = api.project(committee, community)
    sent = {"Authorization": f"Bearer {committee}"}
    for path in ("/api/v1/projects", f"/api/v1/projects/{project['id']}/demands"):
        for content, kind in (
            (b'{"content": ', "application/json"),
            (b"", "application/json"),
            (b'{"content": "x"}', "text/plain"),
            (b'{"content": NaN}', "application/json"),
            ('{"content": "\ud800"}'.encode("utf-8", "surrogatepass"), "application/json"),
        ):
            headers = {**sent, "Content-Type": kind}
            fast = api.client.post(path, headers=headers, content=content)
            with standard_path(_app(api)):
                standard = api.client.post(path, headers=headers, content=content)
            assert fast.status_code >= 400, (path, content, fast.text)
            _same(fast, standard)


_VOLATILE = re.compile(r'"([a-z_]*_at|id|project_id|invoice_no|hash)":("[^"]*"|[0-9]+)')


def _masked(response: httpx.Response) -> tuple[int, str, str | None]:
    location = response.headers.get("location")
    return (
        response.status_code,
        _VOLATILE.sub(r'"\1":"…"', response.text),
        None if location is None else re.sub(r"[0-9]+", "N", location),
    )


def test_a_write_answers_alike_on_both_paths(api: Api, taken: list[str]) -> None:
    community = api.community()
    committee = api.token("committee", communities=[community])
    auth = {"Authorization": f"Bearer {committee}"}
    app = _app(api)
    taken.clear()
    body = {
        "community_id": community,
        "workflow": "self_governance",
        "title": "　楼道文化营造 ",
        "category": "居民自治类",
    }
    answers: dict[str, list[Any]] = {"fast": [], "standard": []}
    for path in ("fast", "standard"):
        with standard_path(app) if path == "standard" else nullcontext():
            out = answers[path]
            created = api.client.post("/api/v1/projects", headers=auth, json=body)
            out.append(_masked(created))
            pid = created.json()["id"]
            demand = {"content": "楼道堆物\u200b", "resident": "高阿姨", "contact": "１３９"}
            out.append(
                _masked(
                    api.client.post(f"/api/v1/projects/{pid}/demands", headers=auth, json=demand)
                )
            )
            for action, data in (
                ("close_collection", {}),
                ("accept", {"note": "属于房前屋后急难事"}),
                ("submit_plan", {"budget_fen": 100_000, "plan": "清理通道"}),
                ("approve", VOTE),
            ):
                version = api.client.get(f"/api/v1/projects/{pid}", headers=auth)
                out.append(_masked(version))
                headers = {
                    **auth,
                    "If-Match": version.headers["etag"],
                    "Idempotency-Key": f"Key-{path}-{action}",
                }
                fired = api.client.post(
                    f"/api/v1/projects/{pid}/actions/{action}", headers=headers, json=data
                )
                out.append(_masked(fired))
                again = api.client.post(
                    f"/api/v1/projects/{pid}/actions/{action}", headers=headers, json=data
                )
                assert again.content == fired.content  # the Idempotency-Key's replay
            expense = {
                "amount_fen": 12_345,
                "payee": "苏州某物业公司 ",
                "invoice_no": f"ＩＮＶ-{path}",
                "description": "主干道杂物清运",
            }
            out.append(
                _masked(
                    api.client.post(f"/api/v1/projects/{pid}/expenses", headers=auth, json=expense)
                )
            )
    assert answers["fast"] == answers["standard"]
    assert all(status < 300 for status, _, _ in answers["fast"])
    # Every one of the fast leg's requests was the plan's own, none of the standard leg's.
    assert len(taken) == len(answers["fast"]) + 4  # and the four replays


def test_a_router_lets_through_every_path_one_of_its_routes_takes(api: Api) -> None:
    routers = [
        getattr(r, "original_router", None)
        for r in _app(api).routes
        if isinstance(getattr(r, "original_router", None), Router)
    ]
    assert len(routers) >= 5
    checked = 0
    for router in routers:
        assert isinstance(router, Router)
        for route in router.routes:
            template = getattr(route, "path", "").replace(
                "{webhook_id:webhook_id}", "wh_" + "0" * 16
            )
            path = re.sub(r"\{[^}]+\}", "1", template)
            scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
            assert route.matches(scope)[0] != Match.NONE, path  # the route itself takes it
            assert router._paths().match(path) is not None, path
            checked += 1
        assert router._paths().match(router.prefix + "/no/such/route/here") is None
    assert checked >= 50


def test_a_path_no_route_takes_is_still_answered_as_before(api: Api) -> None:
    sent = {"Authorization": f"Bearer {api.admin}"}
    assert api.client.get("/api/v1/projects/1/nothing", headers=sent).status_code == 404
    assert api.client.delete("/api/v1/projects/1", headers=sent).status_code == 405


def test_a_request_fastapi_traces_takes_fastapi_own_path(api: Api, taken: list[str]) -> None:
    # FastAPI's telemetry, when switched on, marks the request's scope; its spans (the
    # dependencies, the endpoint) come from its own handler, so the plan steps aside.
    app = _app(api)
    inner = app.build_middleware_stack()

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "fastapi.telemetry": object()}
        await inner(scope, receive, send)

    app.middleware_stack = traced
    try:
        assert api.client.get("/api/v1/me", headers=api.auth(api.admin)).status_code == 200
    finally:
        app.middleware_stack = inner
    assert taken == []
