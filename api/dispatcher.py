"""The webhook dispatcher: claims due deliveries from the outbox and sends them.

It runs inside ``zizhi serve`` (a background thread) or alone as ``zizhi worker``; any number
of them may share one database (see ``engine.store.outbox`` for the lease). Each attempt:

* checks the URL with the SSRF guard and connects to the very address it checked (the host
  name still goes in ``Host`` and in TLS's SNI), so a name that resolves elsewhere on the
  second lookup gains nothing; redirects are never followed; proxies from the environment
  are not used;
* signs per Standard Webhooks (``webhook-id`` kept across retries, ``webhook-timestamp``
  per attempt), and for DingTalk also signs the URL;
* reads at most ``max_response_bytes`` of the answer within ``timeout`` seconds; 2xx is a
  success (for a robot, only with ``errcode`` 0); ``410 Gone`` disables the subscription;
  ``429`` waits for ``Retry-After``; anything else — another status, a timeout, a refused
  connection, an answer over the limit — is retried on the schedule, with jitter.

Deliveries run on a pool of threads; no subscription holds more than ``per_subscription``
of them, so a slow receiver never delays another subscription's deliveries. Nothing a
receiver does raises out of an attempt.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from api.dispatch_config import DispatchConfig
from engine import (
    Claimed,
    Outcome,
    Refused,
    Zizhi,
    any_deliveries_due,
    bot_refused,
    claim_deliveries,
    publish_checkpoint,
    record_attempt,
    signature_headers,
    signed_bot_url,
    wire_body,
)

log = logging.getLogger("zizhi.webhooks")

EXCERPT_CHARS = 1000
CHECKPOINT_LOOK_EVERY = 600.0  # seconds between asking whether the daily checkpoint is due


class Dispatcher:
    def __init__(self, z: Zizhi, config: DispatchConfig) -> None:
        self.z = z
        self.config = config
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="webhook")
        self._thread: threading.Thread | None = None
        self._next_checkpoint_look = 0.0
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,
            verify=config.tls(),
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(max_connections=config.concurrency * 2),
        )

    # --- running -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        """Claim and send until stopped; a database outage is waited out."""
        while not self._stop.is_set():
            self.checkpoint_round()
            try:
                claimed = self._claim()
            except Exception as exc:  # the database may be restarting: try again later
                log.warning("webhook claim failed: %s", type(exc).__name__)
                claimed = 0
            if claimed == 0:
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()

    def checkpoint_round(self) -> None:
        """Once a day, a signed checkpoint as an ``audit.checkpoint`` history event (which
        webhooks carry out); looked at every few minutes."""
        if time.monotonic() < self._next_checkpoint_look:
            return
        self._next_checkpoint_look = time.monotonic() + CHECKPOINT_LOOK_EVERY
        try:
            publish_checkpoint(self.z)
        except Exception as exc:  # the database may be restarting: the next round retries
            log.warning("checkpoint failed: %s", type(exc).__name__)

    def run_until_idle(self, timeout: float = 60) -> None:
        """Send everything due now (and what becomes due meanwhile), then return: for tests
        and one-shot use."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Nothing in flight before a claim that found nothing: all that is due is done.
            idle = self._inflight() == 0
            if self._claim() == 0 and idle:
                return
            time.sleep(0.02)
        raise TimeoutError("webhook deliveries still in flight")

    def _inflight(self) -> int:
        with self._lock:
            return sum(self._busy.values())

    def _claim(self) -> int:
        with self._lock:
            free = self.config.concurrency - sum(self._busy.values())
            busy = sorted(s for s, n in self._busy.items() if n >= self.config.per_subscription)
        if free <= 0:
            return 0
        now = self.z.clock()
        with self.z.db.read() as conn:
            if not any_deliveries_due(conn, now):
                return 0
        with self.z.db.write() as conn:
            claimed = claim_deliveries(
                conn,
                owner=self.owner,
                now=now,
                lease=self.config.lease_span,
                limit=min(free, self.config.per_subscription),
                busy=busy,
            )
            conn.commit()
        for delivery in claimed:
            with self._lock:
                self._busy[delivery.subscription_id] += 1
            self._pool.submit(self._attempt, delivery)
        return len(claimed)

    def _attempt(self, delivery: Claimed) -> None:
        try:
            outcome = self.send(delivery)
            record_attempt(
                self.z,
                delivery,
                self.owner,
                outcome,
                disable_after=self.config.disable_after,
            )
            log.info(
                "webhook %s to %s attempt %d: %s",
                delivery.message_id,
                delivery.subscription_id,
                delivery.attempt,
                "delivered" if outcome.success else (outcome.error or outcome.status_code),
            )
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.error("webhook %s attempt failed to record: %s", delivery.message_id, exc)
        finally:
            with self._lock:
                self._busy[delivery.subscription_id] -= 1
                if self._busy[delivery.subscription_id] <= 0:
                    del self._busy[delivery.subscription_id]
            self._wake.set()

    # --- one attempt -------------------------------------------------------------------

    def send(self, delivery: Claimed) -> Outcome:
        started = time.monotonic()
        body = wire_body(delivery.format, delivery.payload)
        now = self.z.clock()
        # Receivers compare these with their own clocks: wall time, whatever the engine's.
        wall = time.time()
        url = delivery.url
        if delivery.format == "dingtalk_bot":
            url = signed_bot_url(url, delivery.bot_secret, int(wall * 1000))
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Zizhi-Webhooks/1.0",
            "accept-encoding": "identity",
            **signature_headers(delivery.secrets, delivery.message_id, int(wall), body),
        }
        try:
            target = self.config.guard.check(url)[0]
        except Refused as exc:
            return self._failed(delivery, started, f"地址被拒绝：{exc}")
        pinned, host_header = _pinned(url, target.host, target.address)
        try:
            with self._client.stream(
                "POST",
                pinned,
                content=body.encode(),
                headers={**headers, "host": host_header},
                extensions={"sni_hostname": target.host},
            ) as response:
                excerpt, too_big, slow = self._read(response, started)
                status = response.status_code
                retry_after = response.headers.get("retry-after")
        except httpx.TimeoutException:
            return self._failed(delivery, started, f"超时（{self.config.timeout:g} 秒）")
        except httpx.HTTPError as exc:
            return self._failed(delivery, started, f"连接失败：{type(exc).__name__}")
        if slow:
            return self._failed(delivery, started, "应答超时", status)
        if too_big:
            limit = self.config.max_response_bytes
            return self._failed(delivery, started, f"应答超过 {limit} 字节", status, excerpt)
        if 200 <= status < 300:
            refused = bot_refused(delivery.format, excerpt)
            if refused is None:
                return Outcome(True, status, _ms(started), None, excerpt)
            return self._failed(delivery, started, refused, status, excerpt)
        if status == 410:
            return Outcome(False, status, _ms(started), "410 Gone", excerpt, gone=True)
        if status == 429 and (wait := _retry_after(retry_after, now)) is not None:
            return Outcome(
                False, status, _ms(started), "429 请求过多", excerpt, retry_at=now + wait
            )
        error = f"HTTP {status}" + ("（不跟随重定向）" if 300 <= status < 400 else "")
        return self._failed(delivery, started, error, status, excerpt)

    def _read(self, response: httpx.Response, started: float) -> tuple[str, bool, bool]:
        """(excerpt, over the limit, past the deadline): never more than the limit read."""
        limit, deadline = self.config.max_response_bytes, started + self.config.timeout
        chunks: list[bytes] = []
        seen = 0
        for chunk in response.iter_raw():
            seen += len(chunk)
            if seen > limit:
                return _excerpt(b"".join(chunks)), True, False
            chunks.append(chunk)
            if time.monotonic() > deadline:
                return _excerpt(b"".join(chunks)), False, True
        return _excerpt(b"".join(chunks)), False, False

    def _failed(
        self,
        delivery: Claimed,
        started: float,
        error: str,
        status: int | None = None,
        excerpt: str | None = None,
    ) -> Outcome:
        schedule = self.config.retry_schedule
        retry_at: datetime | None = None
        if delivery.attempt <= len(schedule):
            spread = 1 + random.uniform(-self.config.jitter, self.config.jitter)
            retry_at = self.z.clock() + timedelta(seconds=schedule[delivery.attempt - 1] * spread)
        return Outcome(False, status, _ms(started), error, excerpt, retry_at=retry_at)


def _pinned(url: str, host: str, address: str) -> tuple[str, str]:
    """The URL with its host replaced by the checked address, and the Host header."""
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After in seconds or as an HTTP date, held between 1 s and a day."""
    if not value:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return timedelta(seconds=min(max(seconds, 1), 86400))


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
