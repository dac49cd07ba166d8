"""Crash safety: ``zizhi serve`` is SIGKILLed at random moments while clients write.

Four client threads drive projects through their whole life over HTTP — open, record a
demand, screen, plan, approve (and the street's approval for party-service projects), record
expenses, then close or cancel — each request with its own Idempotency-Key, retried with the
same key until an answer arrives. A seeded schedule kills the server (SIGKILL: no shutdown,
no flush, whatever was in flight is cut off) several times and starts it again. While it is
down the test checks the database; at the end it checks that:

* every acknowledged answer (a 2xx the client received) is in the database: the project's
  history reaches the acknowledged version, in the acknowledged state with the acknowledged
  money; the acknowledged expense exists with its amount;
* nothing partial exists: every project's record equals what replaying its history gives,
  every balance equals the sum of its entries, and ``zizhi verify`` exits 0;
* every logical request took effect exactly once, however often it was retried: as many
  projects, transitions, demands and expenses as requests, and resending any request with its
  key returns its first answer and changes nothing.

In one round the admin closes last year (releasing what ten projects still hold, in one
transaction) and the server is killed the moment that commit is visible, most often before
the answer is out: the retry must return the first answer (not ``already_exists``), and the
close must have happened once and whole.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import sqlalchemy as sa

import engine
from engine.model import CLI, fiscal_year
from engine.store.tables import closed_years, demands, events, fund_accounts, ledger_entries
from engine.store.tables import projects as projects_table
from engine.store.uow import Zizhi
from engine.usecases.projects import ProjectView
from tests.e2e.server import REPO, cli, free_port, wait_until_up
from tests.factories import VOTE, World, assert_replays_to, secret
from tests.reliability.support import last_year_clock

SEED = 726
ROUNDS = 5
CLOSE_ROUND = 2  # the round whose kill follows the year close
CLIENTS_PER_COMMUNITY = 2
BUDGET_FEN = 100_000
EXPENSE_FEN = 20_000
DEADLINE_SECONDS = 300  # a safety net for the whole test, never reached when all is well


class Server:
    """``zizhi serve`` as a child process that can be SIGKILLed and started again.

    Each start takes a fresh port; clients read ``base`` before every attempt, so none of
    them holds on to a dead address.
    """

    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.log = log
        self.base: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = free_port()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={
                    **os.environ,
                    "ZIZHI_DATABASE_URL": self.database_url,
                    "PYTHONPATH": str(REPO),
                    "ZIZHI_LOG_LEVEL": "warning",
                },
            )
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, self._process, timeout=60, why=lambda: self.log.read_text()[-3000:])
        self.base = base

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self.base = None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)
        self.base = None


@dataclass
class Sent:
    """One logical request and the answer its client finally acknowledged."""

    client: str
    key: str
    path: str  # every request is a POST
    body: dict[str, Any]
    kind: str  # open | demand | action:<name> | expense | close_year
    token: str
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    cut_off: int = 0  # attempts that may have reached the server but got no answer


class Failed(Exception):
    """A client got an answer no retried request may get."""


class Client(threading.Thread):
    """Drives projects one after another until told to stop, retrying every request."""

    def __init__(
        self,
        name: str,
        server: Server,
        community: str,
        committee: str,
        street: str,
        rng: random.Random,
        stop: threading.Event,
        deadline: float,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.server, self.community = server, community
        self.committee, self.street = committee, street
        self.rng, self.stop, self.deadline = rng, stop, deadline
        self.sent: list[Sent] = []
        self.error: BaseException | None = None
        self._keys = itertools.count(1)
        self._http = httpx.Client(timeout=60)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.drive_one_project()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc
        finally:
            self.close()

    def run_one(self, kind: str, path: str) -> None:
        """Send one request (on a thread of its own), keeping any failure for the test."""
        try:
            self.send(kind, path, {})
        except BaseException as exc:
            self.error = exc

    def close(self) -> None:
        self._http.close()

    def drive_one_project(self) -> None:
        workflow = self.rng.choice(["self_governance", "self_governance", "party_service"])
        project = self.send(
            "open",
            "/api/v1/projects",
            {
                "community_id": self.community,
                "workflow": workflow,
                "title": f"{self.name} 的项目",
                "category": "居民自治类",
            },
        )
        base = f"/api/v1/projects/{project['id']}"
        self.send("demand", f"{base}/demands", {"content": "楼道堆物", "resident": "王阿姨"})
        steps: list[tuple[str, dict[str, Any]]] = [
            ("close_collection", {}),
            ("accept", {"note": "属于房前屋后急难事"}),
            ("submit_plan", {"budget_fen": BUDGET_FEN, "plan": "清理楼道"}),
            ("approve", VOTE),
        ]
        if workflow == "party_service":
            steps.append(("street_approve", {"note": "同意"}))
        for action, body in steps:
            self.act(base, action, body)
        for n in range(2):
            self.send(
                "expense",
                f"{base}/expenses",
                {
                    "amount_fen": EXPENSE_FEN,
                    "payee": "保洁公司",
                    "invoice_no": f"{self.name}-{project['id']}-{n}",
                    "description": "清运",
                },
            )
        if self.rng.random() < 0.3:
            self.act(base, "cancel", {"reason": "居民已自行解决"})
            return
        self.act(base, "complete_implementation", {"report": "已清理"})
        self.act(base, "evaluate", {"score": 5, "report": "居民满意"})
        self.act(base, "close", {"notice": "已办结", "satisfied": 30, "unsatisfied": 1})

    def act(self, base: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.street if action == "street_approve" else self.committee
        return self.send(f"action:{action}", f"{base}/actions/{action}", body, token=token)

    def send(
        self, kind: str, path: str, body: dict[str, Any], *, token: str | None = None
    ) -> dict[str, Any]:
        sent = Sent(
            client=self.name,
            key=f"{self.name}-{next(self._keys)}",
            path=path,
            body=body,
            kind=kind,
            token=token or self.committee,
        )
        self.sent.append(sent)
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"{self.name}: no answer to {kind} {path} in time")
            base = self.server.base
            if base is None:
                time.sleep(0.02)
                continue
            sent.attempts += 1
            try:
                response = post(self._http, base, sent)
            except httpx.ConnectError:  # nobody listening: the request was not sent
                time.sleep(0.02)
                continue
            except httpx.TransportError:  # sent, perhaps done, but the answer was cut off
                sent.cut_off += 1
                time.sleep(0.02)
                continue
            if not 200 <= response.status_code < 300:
                raise Failed(f"{kind} {path} → {response.status_code} {response.text}")
            sent.answer = response.json()
            sent.status = response.status_code  # last: a set status means a whole answer
            return sent.answer


def post(http: httpx.Client, base: str, sent: Sent) -> httpx.Response:
    return http.post(
        base + sent.path,
        json=sent.body,
        headers={"Authorization": f"Bearer {sent.token}", "Idempotency-Key": sent.key},
    )


# --- checks ------------------------------------------------------------------------------------


def _project_of(sent: Sent) -> int:
    return int(sent.answer["project_id" if sent.kind in ("demand", "expense") else "id"])


def _replay_prefixes(history: list[engine.EventView]) -> dict[int, engine.ReplayedProject]:
    """The project as it stood after each version: the last event before the next change."""
    by_version: dict[int, engine.ReplayedProject] = {}
    for n in range(1, len(history) + 1):
        replayed = engine.replay_project(history[:n])
        by_version[replayed.version] = replayed
    return by_version


def check_acknowledged(z: Zizhi, acknowledged: list[Sent]) -> None:
    """Every answer a client received is in the database, as the answer showed it."""
    by_project: dict[int, list[Sent]] = defaultdict(list)
    for sent in acknowledged:
        by_project[_project_of(sent)].append(sent)
    for project_id, sents in by_project.items():
        versions = _replay_prefixes(engine.project_history(z, CLI, project_id))
        expenses = {e.id: e for e in engine.list_expenses(z, CLI, project_id)}
        with z.read() as conn:
            demand_ids = set(
                conn.execute(
                    sa.select(demands.c.id).where(demands.c.project_id == project_id)
                ).scalars()
            )
        for sent in sents:
            a = sent.answer
            if sent.kind == "expense":
                got = expenses.get(a["id"])
                assert got is not None, f"acknowledged expense lost: {a}"
                assert (got.amount_fen, got.invoice_no) == (a["amount_fen"], a["invoice_no"])
            elif sent.kind == "demand":
                assert a["id"] in demand_ids, f"acknowledged demand lost: {a}"
            else:
                then = versions.get(a["version"])
                assert then is not None, f"acknowledged version lost: {sent.kind} {a}"
                assert (then.state, then.budget_fen, then.reserved_fen, then.spent_fen) == (
                    a["state"],
                    a["budget_fen"],
                    a["reserved_fen"],
                    a["spent_fen"],
                ), sent


def check_nothing_partial(z: Zizhi) -> None:
    """Every project equals its replayed history; every balance the sum of its entries."""
    with z.read() as conn:
        ids = list(conn.execute(sa.select(projects_table.c.id)).scalars())
    for project_id in ids:
        got = engine.get_project(z, CLI, project_id)
        assert_replays_to(engine.project_history(z, CLI, project_id), got, got)
    e = ledger_entries.c
    signed = {
        "allocate": (1, 0, 0),
        "reserve": (0, 1, 0),
        "spend": (0, -1, 1),
        "release": (0, -1, 0),
    }
    with z.read() as conn:
        sums: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in conn.execute(sa.select(e.community_id, e.fund, e.year, e.kind, e.amount_fen)):
            for i, sign in enumerate(signed[row.kind]):
                sums[(row.community_id, row.fund, row.year)][i] += sign * row.amount_fen
        balances = {
            (r.community_id, r.fund, r.year): [r.allocated_fen, r.reserved_fen, r.spent_fen]
            for r in conn.execute(sa.select(fund_accounts))
        }
    assert balances == dict(sums)
    for allocated, reserved, spent in balances.values():
        assert 0 <= reserved and 0 <= spent and reserved + spent <= allocated
    report = engine.verify(z, CLI)
    assert report.ok, report.first_bad


def check_exactly_once(z: Zizhi, sent: list[Sent], *, before: int) -> None:
    """As many projects, transitions, demands and expenses as requests; the last answers hold.

    ``before``: how many projects there were before the clients started.
    """
    opened = [s for s in sent if s.kind == "open"]
    with z.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(projects_table)).scalar_one()
    assert count == before + len(opened)
    requests: dict[int, Counter[str]] = defaultdict(Counter)
    last: dict[int, dict[str, Any]] = {}
    for s in sent:
        project_id = _project_of(s)
        requests[project_id][s.kind.split(":")[0]] += 1
        if s.kind == "open" or s.kind.startswith("action:"):
            last[project_id] = s.answer  # each client waits for one answer before the next
    for project_id, asked in requests.items():
        history = engine.project_history(z, CLI, project_id)
        happened = Counter(e.type for e in history)
        assert happened["project.created"] == asked["open"] == 1
        assert happened["project.transitioned"] == asked["action"], project_id
        assert happened["demand.created"] == asked["demand"], project_id
        assert happened["expense.recorded"] == asked["expense"], project_id
        assert len(engine.list_expenses(z, CLI, project_id)) == asked["expense"]
        now = engine.get_project(z, CLI, project_id)
        assert (now.state, now.version, now.reserved_fen, now.spent_fen) == (
            last[project_id]["state"],
            last[project_id]["version"],
            last[project_id]["reserved_fen"],
            last[project_id]["spent_fen"],
        ), project_id


def _wait_until_closed(z: Zizhi, year: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with z.read() as conn:
            if conn.execute(sa.select(closed_years).where(closed_years.c.year == year)).first():
                return
        time.sleep(0.001)
    raise TimeoutError(f"year {year} was never closed")


def _event_count(z: Zizhi) -> int:
    with z.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


# --- the test ----------------------------------------------------------------------------------


def test_killing_the_server_at_random_moments_loses_nothing_acknowledged_and_does_nothing_twice(
    fresh_z: Zizhi, tmp_path: Path
) -> None:
    z = fresh_z
    url = z.db.url.render_as_string(hide_password=False)
    rng = random.Random(SEED)
    deadline = time.monotonic() + DEADLINE_SECONDS
    stop = threading.Event()
    server = Server(url, tmp_path / "serve.log")
    clients, holding = _set_up(z, server, rng, stop, deadline)
    last_year = holding[0].year
    admin_token = secret(engine.create_token(z, CLI, name="管理员", role="admin"))
    admin = Client("admin", server, "", admin_token, "", random.Random(0), stop, deadline)
    closer = threading.Thread(
        target=admin.run_one, args=("close_year", f"/api/v1/years/{last_year}/close"), daemon=True
    )

    def acknowledged() -> list[Sent]:
        return [s for c in clients for s in c.sent if s.status]

    try:
        server.start()
        for client in clients:
            client.start()
        for round_no in range(ROUNDS):
            before = len(acknowledged())
            while len(acknowledged()) == before and time.monotonic() < deadline:
                time.sleep(0.01)  # the clients are at work on this server
            if round_no == CLOSE_ROUND:
                closer.start()
                _wait_until_closed(z, last_year, deadline)
            else:
                time.sleep(rng.uniform(0.05, 1.0))
            server.kill()
            failed = [c.error for c in clients if c.error is not None]
            assert not failed, failed
            check_acknowledged(z, acknowledged())
            check_nothing_partial(z)
            server.start()
        time.sleep(rng.uniform(0.2, 0.5))
        stop.set()  # each client finishes the project it is driving
        workers: list[threading.Thread] = [*clients, closer]
        for worker in workers:
            worker.join(max(1, deadline - time.monotonic()))
            assert not worker.is_alive(), f"{worker.name} did not finish"
        failed = [c.error for c in [*clients, admin] if c.error is not None]
        assert not failed, failed

        sent = [s for c in clients for s in c.sent]
        assert all(s.status for s in sent)
        cut_off = [s for s in sent if s.cut_off]
        assert cut_off, "no kill cut a request off: the test did not test anything"
        check_acknowledged(z, sent)
        check_exactly_once(z, sent, before=len(holding))
        check_nothing_partial(z)
        (close,) = admin.sent
        check_closed_once(z, close, holding)

        # Sending a request again with its key returns its first answer and does nothing.
        again = [close, *cut_off, *rng.sample(sent, min(40, len(sent)))]
        events_before = _event_count(z)
        with httpx.Client(timeout=60) as http:
            for s in again:
                assert server.base is not None
                response = post(http, server.base, s)
                assert (response.status_code, response.json()) == (s.status, s.answer), s
        assert _event_count(z) == events_before
    finally:
        stop.set()
        server.stop()
        admin.close()
    result = cli(url, "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def _set_up(
    z: Zizhi, server: Server, rng: random.Random, stop: threading.Event, deadline: float
) -> tuple[list[Client], list[ProjectView]]:
    """Two communities, each with last year's projects still holding money and two clients."""
    past, now = World(Zizhi(z.db, z.workflows, clock=last_year_clock())), World(z)
    year = fiscal_year(z.clock())
    clients, holding = [], []
    for c in range(2):
        community = past.community()  # first, so every chain's times run forward
        for _ in range(5):
            project = past.project(community)
            holding.append(past.advance(project, "implementation", budget_fen=300_000))
        for fund in ("self_governance", "party_service"):  # never the reason for a refusal
            engine.set_allocation(z, CLI, community, fund, year, 100_000_000)
        street = secret(
            engine.create_token(
                z, CLI, name="街道", role="street", streets=[now.street_of(community)]
            )
        )
        for n in range(CLIENTS_PER_COMMUNITY):
            committee = secret(
                engine.create_token(
                    z, CLI, name=f"居委会{n}", role="committee", communities=[community]
                )
            )
            clients.append(
                Client(
                    f"client{c}{n}",
                    server,
                    community,
                    committee,
                    street,
                    random.Random(rng.random()),
                    stop,
                    deadline,
                )
            )
    return clients, holding


def check_closed_once(z: Zizhi, close: Sent, holding: list[ProjectView]) -> None:
    """The year close happened once and whole: every reservation of the year released."""
    assert close.status == 200
    held = sum(p.reserved_fen for p in holding)
    assert (close.answer["projects_released"], close.answer["released_fen"]) == (
        len(holding),
        held,
    )
    with z.read() as conn:
        closes = conn.execute(
            sa.select(sa.func.count()).where(events.c.type == "year.closed")
        ).scalar_one()
    assert closes == 1
    for p in holding:
        now = engine.get_project(z, CLI, p.id)
        assert (now.reserved_fen, now.version) == (0, p.version + 1)
    for community in {p.community_id for p in holding}:
        fund = engine.funds(z, CLI, community, year=holding[0].year)[0]
        assert (fund.reserved_fen, fund.spent_fen) == (0, 0)
