"""How ``zizhi serve`` runs uvicorn: one process or several workers, TCP_NODELAY, a plain log.

* **TCP_NODELAY on every connection.** asyncio sets it only on sockets whose protocol number
  is TCP; the listening socket uvicorn binds itself for ``--workers`` (and hands to each
  worker) is made with protocol 0, so the connections accepted from it kept Nagle's
  algorithm on, and every response waited for the client's delayed ACK: about 40 ms per
  request (docs/performance.md). The protocol class below sets it on each connection.
* **A plain access log.** Same line as uvicorn's, without colour codes or the copy of each
  record uvicorn's formatter makes.
* **Workers** build their app from the environment (``ZIZHI_*``), as the parent did.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from typing import Any

from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

try:  # the faster parser when installed (uvicorn[standard]), else h11 as uvicorn would
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - depends on what is installed
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class NoDelayProtocol(_Base):
    """uvicorn's HTTP protocol, with TCP_NODELAY set on the connection it serves."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - the peer already left
                pass
        super().connection_made(transport)


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with a plain formatter for the access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"] = {"format": "%(levelname)s:     %(message)s"}
    return config


def app_from_environment() -> FastAPI:
    """The app of one worker process (``zizhi serve --workers N``), configured as its parent."""
    from api.app import create_app
    from api.cli import open_zizhi
    from api.settings import Settings

    settings = Settings()
    return create_app(open_zizhi(settings), settings)
