"""Routes that cross into a worker thread once per request, for the engine call only.

FastAPI runs every plain ``def`` dependency and route in the threadpool, and then validates a
plain route's answer in the threadpool again: several hand-offs per request, each costing
more than a whole floor transaction's bookkeeping (docs/performance.md). Here dependencies
are ``async def`` (they only parse headers and bodies), and ``OneHandOff`` wraps each plain
``def`` endpoint in an ``async def`` that runs it — the engine call — in the threadpool; its
answer is then validated and serialised on the event loop. Signatures, status codes,
headers and bodies stay exactly as declared.

``Router`` is an APIRouter with these routes that answers "no match" at once for a path
outside its prefix: FastAPI otherwise tries every route of every router in turn (several
µs each), and ``/api/v1/me`` came after some fifty of them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope


def in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async def`` twin of a plain endpoint that runs it in the threadpool.

    FastAPI reads the parameters through ``__wrapped__`` (and resolves their annotations in
    the endpoint's own module), so the route is declared exactly as before.
    """

    @functools.wraps(endpoint)
    async def endpoint_in_thread(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return endpoint_in_thread


class OneHandOff(APIRoute):
    """An APIRoute whose plain ``def`` endpoint runs in the threadpool, and nothing else."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isgeneratorfunction(endpoint):
            endpoint = in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


class Router(APIRouter):
    """An APIRouter of ``OneHandOff`` routes that skips a path outside its prefix at once.

    Include it in the app without a further prefix (``app.include_router(router)``): the
    gate compares the request's path with this router's own prefix.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(route_class=OneHandOff, **kwargs)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.prefix and scope["type"] == "http":
            if not get_route_path(scope).startswith(self.prefix):
                return Match.NONE, {}
        return super().matches(scope)
