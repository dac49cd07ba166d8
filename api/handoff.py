"""Routes that cross into a worker thread once per request, for the engine call only.

FastAPI runs every plain ``def`` dependency and route in the threadpool, and then validates a
plain route's answer in the threadpool again: several hand-offs per request, each costing
more than a whole floor transaction's bookkeeping (docs/performance.md). Here dependencies
are ``async def`` (they only parse headers and bodies), and ``OneHandOff`` wraps each plain
``def`` endpoint in an ``async def`` that runs it — the engine call — in the threadpool; its
answer is then validated and serialised on the event loop. Signatures, status codes,
headers and bodies stay exactly as declared. On SQLite a write (any method but GET, HEAD and
OPTIONS) waits on the loop for the one writers' thread (``one_writer_at_a_time``).

**The fast path.** FastAPI answers every request through its general machinery: it walks each
route's dependency tree, looks up every parameter's aliases and kind, and checks caches and
overrides — about a fifth of a write's server CPU, more than the engine's own bookkeeping
(docs/performance.md §7). A route whose parameters are all of the few kinds Zizhi uses (the
dependencies in ``api.deps.FROM_REQUEST``, integer or text path parameters, query parameters
left at their defaults, one JSON body model, the request and the response) gets a ``Plan``
when it is built: the same steps in the same order, computed once. A request that the plan
would have to judge — a path parameter or a body that does not validate, a query string, a
body that is not plain JSON, dependency overrides (tests), FastAPI's telemetry switched on —
is handed to FastAPI's own handler instead, which answers it exactly as it always has: the
plan only takes the requests whose answer cannot differ. Exceptions raised by a dependency
or the engine propagate as they do from FastAPI's handler, the response is validated and
serialised by FastAPI's own ``serialize_response``, and the headers an endpoint set are sent
the same way.
(``tests/api/test_fast_path.py`` holds both paths to the same answers.)

``Router`` is an APIRouter with these routes that answers "no match" at once for a path none
of its routes can match — outside its prefix, or matched by none of its routes' patterns
(one joined pattern, a single regular-expression match): FastAPI otherwise tries every route
of every router in turn (several µs each), and ``/api/v1/me`` came after some fifty of them,
an action's route after the thirty of the projects' routers that share its prefix.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from fastapi import params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, APIRouter, serialize_response
from pydantic import BaseModel
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

_WRITERS: RunVar[CapacityLimiter] = RunVar("zizhi_writers")


def one_writer_at_a_time() -> None:
    """Let this event loop's writes enter a worker thread one at a time.

    Called from the app's lifespan on SQLite, which has one writer anyway (and ``Database``
    serialises its write transactions): a second writer in a thread could only wait there,
    competing for the GIL with the one that holds the lock. Reads keep the default limiter.
    """
    _WRITERS.set(CapacityLimiter(1))


def in_thread(endpoint: Callable[..., Any], *, writes: bool = False) -> Callable[..., Any]:
    """An ``async def`` twin of a plain endpoint that runs it in the threadpool.

    A route that ``writes`` takes the event loop's writers' limiter when it has one
    (``one_writer_at_a_time``), the default limiter otherwise. FastAPI reads the parameters
    through ``__wrapped__`` (and resolves their annotations in the endpoint's own module), so
    the route is declared exactly as before.
    """

    @functools.wraps(endpoint)
    async def endpoint_in_thread(*args: Any, **kwargs: Any) -> Any:
        call = functools.partial(endpoint, *args, **kwargs)
        limiter = _WRITERS.get(None) if writes else None
        return await anyio.to_thread.run_sync(call, limiter=limiter)

    return endpoint_in_thread


class OneHandOff(APIRoute):
    """An APIRoute whose plain ``def`` endpoint runs in the threadpool, and nothing else."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isgeneratorfunction(endpoint):
            methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
            endpoint = in_thread(endpoint, writes=not methods <= _READS)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        plan = Plan.of(self)
        return standard if plan is None else plan.handler(standard)


def page_router() -> APIRouter:
    """A router for the web pages (``api.web``), left out of the OpenAPI schema.

    Its plain ``def`` pages run in the threadpool as the API's routes do, so a form's POST
    takes the one writers' thread on SQLite like any other write. Pages answer HTML, which no
    ``Plan`` takes: every request goes through FastAPI's own handler.
    """
    return APIRouter(include_in_schema=False, route_class=OneHandOff)


class Router(APIRouter):
    """An APIRouter of ``OneHandOff`` routes that skips a path none of them matches at once.

    Include it in the app without a further prefix (``app.include_router(router)``): the
    gate compares the request's path with this router's own prefix.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(route_class=OneHandOff, **kwargs)
        self._joined: tuple[int, re.Pattern[str]] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = get_route_path(scope)
            if not path.startswith(self.prefix) or self._paths().match(path) is None:
                return Match.NONE, {}
        return super().matches(scope)

    def _paths(self) -> re.Pattern[str]:
        """One pattern matching any path one of this router's routes matches (its routes'
        patterns joined, their parameters unnamed), rebuilt when a route is added."""
        if self._joined is None or self._joined[0] != len(self.routes):
            patterns = [
                ".*" if regex is None else _UNNAMED.sub("(?:", regex.pattern)
                for regex in (getattr(route, "path_regex", None) for route in self.routes)
            ]
            joined = re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)")
            self._joined = (len(self.routes), joined)
        return self._joined[1]


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNNAMED = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")  # a named group's opening
_FALLBACK: Any = object()  # a request the plan leaves to FastAPI's own handler


@dataclass(frozen=True)
class Plan:
    """A route's request handling, the common case only, worked out when the route is built."""

    call: Callable[..., Awaitable[Any]]
    dependencies: tuple[tuple[str, Callable[[Request], Awaitable[Any]]], ...]
    path: tuple[tuple[str, str, Any], ...]  # (parameter, alias, ModelField)
    query: tuple[tuple[str, Any], ...]  # (parameter, its default)
    body: tuple[str, Any] | None  # (parameter, ModelField)
    request_name: str | None
    response_name: str | None
    status_code: int | None
    response_field: Any

    @classmethod
    def of(cls, route: APIRoute) -> Plan | None:
        """The route's plan, or None if any of its parameters is of a kind it leaves to
        FastAPI (then every request takes FastAPI's path)."""
        from api.deps import FROM_REQUEST  # api.deps imports the engine; routes import this

        d = route.dependant
        if (
            not inspect.iscoroutinefunction(d.call)
            or d.header_params
            or d.cookie_params
            or d.http_connection_param_name
            or d.websocket_param_name
            or d.background_tasks_param_name
            or d.security_scopes_param_name
            or route.response_field is None
            or not isinstance(route.response_class, DefaultPlaceholder)
            or route.response_model_include is not None
            or route.response_model_exclude is not None
            or not route.response_model_by_alias
            or route.response_model_exclude_unset
            or route.response_model_exclude_defaults
            or route.response_model_exclude_none
            or route.is_json_stream
            or route.status_code not in (None, 200, 201)  # 204 and the like: no body
        ):
            return None
        dependencies = []
        for sub in d.dependencies:
            solve = FROM_REQUEST.get(sub.call) if sub.call is not None else None
            if solve is None or sub.name is None:
                return None
            dependencies.append((sub.name, solve))
        path = []
        for field in d.path_params:
            if field.field_info.annotation not in (int, str):
                return None
            path.append((field.name, field.alias, field))
        query = []
        for field in d.query_params:
            info = field.field_info
            if info.is_required() or info.validate_default:
                return None
            query.append((field.name, field.default))
        body = None
        if d.body_params:
            (field,) = d.body_params  # more than one would be embedded: FastAPI's to read
            info = field.field_info
            model = info.annotation
            if (
                isinstance(info, params.Form)
                or getattr(info, "embed", False)
                or not (isinstance(model, type) and issubclass(model, BaseModel))
            ):
                return None
            body = (field.name, field)
        assert d.call is not None
        return cls(
            call=d.call,
            dependencies=tuple(dependencies),
            path=tuple(path),
            query=tuple(query),
            body=body,
            request_name=d.request_param_name,
            response_name=d.response_param_name,
            status_code=route.status_code,
            response_field=route.response_field,
        )

    def handler(
        self, standard: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            values = await self._solve(request)
            if values is _FALLBACK:
                return await standard(request)
            return await self._respond(values)

        return handle

    async def _solve(self, request: Request) -> Any:
        """The endpoint's arguments, as FastAPI would solve them, or ``_FALLBACK``."""
        scope = request.scope
        if (
            scope["query_string"]
            or getattr(request.app, "dependency_overrides", None)
            or scope.get("fastapi.telemetry") is not None  # FastAPI's spans: its own path
        ):
            return _FALLBACK
        values: dict[str, Any] = {}
        received: Any = None
        if self.body is not None:
            # FastAPI reads a body model's JSON before any dependency: so does the plan.
            if request.headers.get("content-type") != "application/json":
                return _FALLBACK
            try:
                if not await request.body():
                    return _FALLBACK
                received = await request.json()
            except HTTPException:  # the body limit's 413: raised by FastAPI's handler too
                raise
            except Exception:  # noqa: BLE001 - not JSON, or not readable: FastAPI answers it
                return _FALLBACK
        for name, solve in self.dependencies:
            values[name] = await solve(request)
        found = request.path_params
        for name, alias, field in self.path:
            raw = found.get(alias)
            if not raw:
                return _FALLBACK
            value, errors = field.validate(raw, values, loc=("path", alias))
            if errors:
                return _FALLBACK
            values[name] = value
        for name, default in self.query:
            values[name] = deepcopy(default)
        if self.body is not None:
            name, field = self.body
            value, errors = field.validate(received, {}, loc=("body",))
            if errors:
                return _FALLBACK
            values[name] = value
        if self.request_name:
            values[self.request_name] = request
        if self.response_name:
            values[self.response_name] = _sub_response()
        return values

    async def _respond(self, values: dict[str, Any]) -> Response:
        raw = await self.call(**values)
        if isinstance(raw, Response):
            return raw
        content = await serialize_response(
            field=self.response_field, response_content=raw, dump_json=True
        )
        sub = values.get(self.response_name) if self.response_name else None
        status = self.status_code
        if sub is not None and sub.status_code:
            status = sub.status_code
        response = Response(content, media_type="application/json", status_code=status or 200)
        if sub is not None:
            response.headers.raw.extend(sub.headers.raw)
        return response


def _sub_response() -> Response:
    """The Response an endpoint may set headers and a status on, as FastAPI makes it."""
    response = Response()
    del response.headers["content-length"]
    response.status_code = None  # type: ignore[assignment]
    return response
