"""docs/history-format.md is enough to check the history: its worked example is what the
engine computes, and its reference verifier (standard library only) checks a real export made
through the API — and fails on any single tampered field."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.settings import Settings
from engine.store.history import canonical_json, event_hash, genesis_hash
from engine.store.uow import Zizhi
from tests.api.client import Api

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "history-format.md"
VERIFIER = ROOT / "tools" / "verify_export.py"
AT_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


class SteppingClock:
    """Every change a little later: some on a whole second, some between."""

    def __init__(self) -> None:
        self.now = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
        self.steps = iter([timedelta(seconds=1), timedelta(microseconds=500_000)] * 10_000)

    def __call__(self) -> datetime:
        self.now += next(self.steps)
        return self.now


@pytest.fixture
def history(z: Zizhi) -> Iterator[tuple[Api, str, str]]:
    """A community with a project driven to implementation, its expenses and demands, on a
    clock where events fall on whole seconds too; (api, auditor token, community)."""
    zc = Zizhi(z.db, z.workflows, policy=z.policy, clock=SteppingClock())
    with TestClient(create_app(zc, Settings()), raise_server_exceptions=False) as client:
        api = Api(client, zc)
        community = api.community()
        committee = api.token("committee", communities=[community])
        street = api.token("street", streets=[api.street_of(community)])
        project = api.project(committee, community)
        api.advance(committee, project, "implementation", street_token=street, budget_fen=80_000)
        api.ok(
            api.post(
                f"/api/v1/projects/{project['id']}/expenses",
                committee,
                {
                    "amount_fen": 12_345,
                    "payee": '苏州\u3000某"引号"公司\\',
                    "invoice_no": "３２０１",
                    "description": "第一行\n第二行\t制表",
                },
            ),
            201,
        )
        yield api, api.token("auditor"), community


def _export(api: Api, token: str, fmt: str, **params: str) -> bytes:
    answer = api.get(f"/api/v1/audit/events.{fmt}", token, **params)
    assert answer.status_code == 200, answer.text
    return answer.content


def _run_verifier(tmp_path: Path, content: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "events.jsonl"
    path.write_bytes(content)
    # -I -S: isolated, no site-packages: the verifier runs on the standard library alone.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(VERIFIER), str(path), *args],
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_reference_verifier_checks_a_real_export(
    history: tuple[Api, str, str], tmp_path: Path
) -> None:
    api, auditor, community = history
    content = _export(api, auditor, "jsonl", community_id=community)
    events = [json.loads(line) for line in content.decode().splitlines()]
    assert len(events) >= 10
    assert all(AT_TEXT.match(e["at"]) for e in events)
    assert any(e["at"].endswith(".000000+00:00") for e in events), "a whole-second event"
    done = _run_verifier(tmp_path, content)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK: {len(events)} events in 1 chains")


TAMPERED: dict[str, Callable[[Any], Any]] = {
    "chain": lambda v: v + "x",
    "seq": lambda v: v + 1,
    "at": lambda v: v.replace(".", ".9", 1)[:-7] + "+00:00",
    "actor": lambda v: "token:someone-else",
    "role": lambda v: "admin" if v != "admin" else "auditor",
    "community_id": lambda v: None,
    "project_id": lambda v: (v or 0) + 1,
    "type": lambda v: v + "x",
    "data": lambda v: {**v, "tampered": 1},
    "prev_hash": lambda v: ("0" if v[0] != "0" else "1") + v[1:],
    "hash": lambda v: ("0" if v[0] != "0" else "1") + v[1:],
}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_tampering_with_any_field_of_an_exported_event_fails(
    history: tuple[Api, str, str], tmp_path: Path, field: str
) -> None:
    api, auditor, community = history
    lines = _export(api, auditor, "jsonl", community_id=community).decode().splitlines()
    # An event in the middle that has a project, so every field holds a value.
    index = next(i for i, line in enumerate(lines) if json.loads(line)["project_id"] and i > 3)
    event = json.loads(lines[index])
    event[field] = TAMPERED[field](event[field])
    lines[index] = json.dumps(event, ensure_ascii=False)
    done = _run_verifier(tmp_path, ("\n".join(lines) + "\n").encode())
    assert done.returncode == 1, done.stdout
    assert done.stdout.startswith(f"FAILED: line {index + 1} ") or (
        field in {"hash", "seq", "chain"} and done.stdout.startswith("FAILED: line ")
    ), done.stdout


def test_a_filtered_export_is_checked_with_partial(
    history: tuple[Api, str, str], tmp_path: Path
) -> None:
    api, auditor, community = history
    content = _export(api, auditor, "jsonl", community_id=community, type="ledger.*")
    strict = _run_verifier(tmp_path, content)
    assert strict.returncode == 1 and "starts at seq" in strict.stdout
    partial = _run_verifier(tmp_path, content, "--partial")
    assert partial.returncode == 0, partial.stdout


def test_not_an_export_is_refused_clearly(tmp_path: Path) -> None:
    done = _run_verifier(tmp_path, b'{"id": 1}\n')
    assert done.returncode == 1 and "not an event" in done.stdout
    done = _run_verifier(tmp_path, b"id,at,chain\n")
    assert done.returncode == 1 and "not JSON" in done.stdout


def _hash_of(row: Mapping[str, Any]) -> str:
    """A CSV or XLSX row's hash, from its cells as they are (data is the hashed text)."""
    return event_hash(
        chain=str(row["chain"]),
        seq=int(str(row["seq"])),
        at=datetime.fromisoformat(str(row["at"])),
        actor=str(row["actor"]),
        role=str(row["role"]),
        community_id=str(row["community_id"]) if row["community_id"] not in ("", None) else None,
        project_id=int(str(row["project_id"])) if row["project_id"] not in ("", None) else None,
        type=str(row["type"]),
        data=str(row["data"]),
        prev_hash=str(row["prev_hash"]),
    )


def test_csv_and_xlsx_carry_at_and_data_exactly_as_hashed(
    history: tuple[Api, str, str],
) -> None:
    api, auditor, community = history
    jsonl = [
        json.loads(line)
        for line in _export(api, auditor, "jsonl", community_id=community).decode().splitlines()
    ]
    text = _export(api, auditor, "csv", community_id=community).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    book = load_workbook(io.BytesIO(_export(api, auditor, "xlsx", community_id=community)))
    sheet = book["历史事件"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == [
        "事件编号",
        "时间（UTC）",
        "历史链",
        "链上序号",
        "事件类型",
        "操作者",
        "角色",
        "社区",
        "项目",
        "数据",
        "前一事件哈希",
        "事件哈希",
    ]
    columns = ["id", "at", "chain", "seq", "type", "actor", "role"]
    columns += ["community_id", "project_id", "data", "prev_hash", "hash"]
    sheet_rows = [dict(zip(columns, r, strict=True)) for r in cells[1:]]
    assert len(rows) == len(sheet_rows) == len(jsonl)
    for exported, as_csv, as_xlsx in zip(jsonl, rows, sheet_rows, strict=True):
        data_text = canonical_json(exported["data"])
        for row in (as_csv, as_xlsx):
            assert row["at"] == exported["at"] and row["data"] == data_text
            assert _hash_of(row) == exported["hash"]
        assert as_xlsx["id"] == exported["id"] and as_xlsx["project_id"] == exported["project_id"]


def test_the_worked_example_in_the_docs_is_what_the_engine_computes() -> None:
    doc = DOC.read_text(encoding="utf-8")

    def block(marker: str) -> str:
        found = re.search(f"<!-- {marker} -->\n```\n(.*?)\n```", doc, re.S)
        assert found is not None, marker
        return found.group(1)

    data = {"id": "lihe", "kind": "urban", "name": "里河社区", "street": "金阊街道"}
    data["district"] = "姑苏区"
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    text, genesis = canonical_json(data), genesis_hash("lihe")
    framed = canonical_json(
        ["lihe", 1, "2026-03-01T08:00:00.000000+00:00", "cli", "admin", "lihe", None]
        + ["community.created", text, genesis]
    )
    assert block("hash-input") == framed
    assert block("hash-input-hex") == framed.encode().hex()
    assert len(framed.encode()) == 278 and "(278 bytes in UTF-8)" in doc
    assert block("hash") == event_hash(
        chain="lihe",
        seq=1,
        at=at,
        actor="cli",
        role="admin",
        community_id="lihe",
        project_id=None,
        type="community.created",
        data=text,
        prev_hash=genesis,
    )
    assert genesis in doc
