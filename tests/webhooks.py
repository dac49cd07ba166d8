"""What the webhook tests share: local receivers, a clock to move, a dispatcher to drive.

Receivers listen on 127.0.0.1 only, in threads of this process; every message they take is
verified with the Standard Webhooks reference library (``standardwebhooks``).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from api.dispatch_config import DispatchConfig
from api.dispatcher import Dispatcher
from engine import UrlGuard, Zizhi, parse_networks

LOCAL = UrlGuard(allowed=parse_networks("127.0.0.0/8"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


# What a receiver answers: (status, headers, body), or a callable doing something worse.
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    """A local HTTP receiver; ``answer`` decides each reply, ``taken`` keeps 2xx messages."""

    answer: Callable[[Received], Answer | Callable[[BaseHTTPRequestHandler], None]] = lambda r: (
        200,
        {},
        b"ok",
    )
    seen: list[Received] = field(default_factory=list)
    taken: list[Received] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None  # serve https with this server context
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("content-length", 0))
                message = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                receiver.seen.append(message)
                reply = receiver.answer(message)
                if callable(reply):
                    reply(self)
                    return
                status, headers, body = reply
                if 200 <= status < 300:
                    receiver.taken.append(message)
                self.send_response(status)
                for name, value in {"content-length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verified(self, *secrets: str) -> list[Any]:
        """Every message taken, each verified by every secret given; their JSON bodies."""
        for message in self.taken:
            for secret in secrets:
                Webhook(secret).verify(message.body, message.headers)
        return [m.json() for m in self.taken]


@contextmanager
def receiving(
    answer: Callable[[Received], Any] | None = None, *, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    receiver = Receiver(answer, tls=tls) if answer is not None else Receiver(tls=tls)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


class Clock:
    """Wall time plus an offset that tests move forward, as if hours had passed."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **span: float) -> None:
        self.offset += timedelta(**span)


def config(**overrides: Any) -> DispatchConfig:
    values: dict[str, Any] = {
        "retry_schedule": (60, 600, 3600),
        "timeout": 2.0,
        "poll_interval": 0.05,
        "jitter": 0.0,
        "guard": LOCAL,
        **overrides,
    }
    return DispatchConfig(**values)


@contextmanager
def dispatching(z: Zizhi, **overrides: Any) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(z, config(**overrides))
    try:
        yield dispatcher
    finally:
        dispatcher.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
