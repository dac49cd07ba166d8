"""The annual report: every figure recomputed here from the history alone (its ledger events
carry every fen), independently of how the engine computes it; scoping; bad input; exports."""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

import engine
from engine import CLI, EventFilter, EventView, Fund, NotFound, ValidationFailed, Zizhi
from engine.model import fiscal_year
from engine.store.tables import events
from tests.factories import World, new_id, secret

FINAL = ("completed", "rejected", "cancelled")


def build(world: World) -> tuple[list[str], str, str]:
    """Two streets, three communities, projects in every kind of end and on the way."""
    street_a, street_b = new_id("报表街道甲"), new_id("报表街道乙")
    ids = [
        world.community(street=street_a),
        world.community(street=street_a, kind="rural"),
        world.community(street=street_b),
    ]
    z = world.z
    for n, community in enumerate(ids):
        committee = world.committee(community)
        # completed, with expenses and a follow-up on one of them
        for budget, share in ((1_200_000, 0.9), (800_000, 1.0))[: n + 1]:
            p = world.advance(world.project(community), "implementation", budget_fen=budget)
            engine.record_expense(
                z,
                committee,
                p.id,
                {
                    "amount_fen": int(budget * share),
                    "payee": "苏州平江五金建材商行",
                    "invoice_no": f"INV{p.id:08d}",
                    "description": "材料",
                },
            )
            p = world.advance(engine.get_project(z, CLI, p.id), "completed")
        if n == 0:
            engine.record_self_management(
                z,
                committee,
                p.id,
                {
                    "keeper": "楼道长团队",
                    "checked_on": "２０２０年１月２日",
                    "findings": "通道畅通",
                },
            )
        # rejected at screening, cancelled after approval (its reservation released)
        rejected = world.advance(world.project(community), "screening")
        engine.fire(z, committee, rejected.id, "reject", {"reason": "不属于急难事"})
        cancelled = world.advance(world.project(community), "implementation", budget_fen=300_000)
        engine.fire(z, committee, cancelled.id, "cancel", {"reason": "居民意见变化"})
        # still open: one collecting demands, one in implementation with a part paid
        engine.add_to_project(
            z, committee, world.project(community).id, {"content": "路灯坏了", "resident": "李阿姨"}
        )
        working = world.advance(world.project(community), "implementation", budget_fen=500_000)
        engine.record_expense(
            z,
            committee,
            working.id,
            {
                "amount_fen": 123_456,
                "payee": "苏州虎丘电力安装有限公司",
                "invoice_no": f"W{working.id:08d}",
                "description": "线路",
            },
        )
        engine.record_demand(z, committee, community, {"content": "想要晾衣架", "resident": "张"})
    urban = ids[0]
    party = world.advance(
        world.project(urban, workflow="party_service"), "completed", budget_fen=2_000_000
    )
    assert party.state == "completed"
    return ids, street_a, street_b


# --- the independent recomputation -------------------------------------------------------------


def _whole_stream(z: Zizhi) -> list[EventView]:
    """Every event, streamed as auditors read them. The feed may end early for a moment
    (``tests.factories.settled``); this reads until it shows every event in the table."""
    with z.read() as conn:
        whole = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    for _ in range(100):
        stream = list(engine.stream_events(z, CLI, EventFilter()))
        if len(stream) == whole:
            return stream
        time.sleep(0.05)
    raise AssertionError("the feed never caught up")


def expected(z: Zizhi, community_ids: Iterable[str], year: int) -> dict[str, Any]:
    """The figures of a set of communities, from the audit stream of the history alone."""
    wanted = set(community_ids)
    history = [e for e in _whole_stream(z) if e.community_id in wanted]
    by_project: dict[int, list[EventView]] = defaultdict(list)
    for e in history:
        if e.project_id is not None:
            by_project[e.project_id].append(e)
    mine = {
        pid: evs
        for pid, evs in by_project.items()
        if evs[0].type == "project.created" and evs[0].data["year"] == year
    }
    states = {}
    for pid, evs in mine.items():
        moves = [e for e in evs if e.type == "project.transitioned"]
        states[pid] = moves[-1].data["to"] if moves else evs[0].data["state"]
    figures: dict[str, Any] = {
        "projects_opened": len(mine),
        "projects_open": sum(s not in FINAL for s in states.values()),
        "projects_self_managed": sum(
            any(e.type == "project.self_managed" for e in evs) for evs in mine.values()
        ),
    }
    for state in FINAL:
        figures[f"projects_{state}"] = sum(s == state for s in states.values())
    received = [
        e.data["demand_id"]
        for e in history
        if e.type == "demand.created" and fiscal_year(e.at) == year
    ]
    settled = {
        e.data["demand_id"]
        for pid, evs in mine.items()
        if states[pid] == "completed"
        for e in evs
        if e.type in ("demand.created", "demand.linked")
    }
    figures["demands_received"] = len(received)
    figures["demands_settled"] = len([d for d in received if d in settled])
    money = {f.value: {"allocated_fen": 0, "reserved_fen": 0, "spent_fen": 0} for f in Fund}
    for e in history:
        if e.type.startswith("ledger.") and e.data["year"] == year:
            sums, amount = money[e.data["fund"]], e.data["amount_fen"]
            if e.type == "ledger.allocated":
                sums["allocated_fen"] += amount
            elif e.type == "ledger.reserved":
                sums["reserved_fen"] += amount
            elif e.type == "ledger.spent":
                sums["reserved_fen"] -= amount
                sums["spent_fen"] += amount
            elif e.type == "ledger.released":
                sums["reserved_fen"] -= amount
    # Accounts the ledger never opened hold the policy's default for the years from the
    # community's creation to now.
    for community_id in wanted:
        place = engine.get_community(z, CLI, community_id)
        if not fiscal_year(place.created_at) <= year <= fiscal_year(z.clock()):
            continue
        opened = {
            e.data["fund"]
            for e in history
            if e.community_id == community_id
            and e.type == "ledger.allocated"
            and e.data["year"] == year
        }
        for fund in Fund:
            if fund.value not in opened:
                money[fund.value]["allocated_fen"] += z.policy.default_fen(fund.value, place.kind)
    figures["funds"] = money
    days = []
    scores, satisfied, unsatisfied = [], 0, 0
    for evs in mine.values():
        done = [e for e in evs if e.type == "project.transitioned" and e.data["to"] == "completed"]
        if done:
            days.append((done[-1].at - evs[0].at).total_seconds() / 86_400)
        evaluations = [
            e for e in evs if e.type == "project.transitioned" and e.data["action"] == "evaluate"
        ]
        if evaluations:
            scores.append(evaluations[-1].data["fields"]["score"])
        for e in evs:
            if e.type == "project.transitioned" and e.data["action"] == "close":
                satisfied += e.data["fields"]["satisfied"]
                unsatisfied += e.data["fields"]["unsatisfied"]
    figures["median_days_to_complete"] = round(statistics.median(days), 1) if days else None
    # Days in each step: from the event entering it to the event leaving it, a project's
    # stays in one step added up; the median over the projects that left the step.
    stays: dict[str, list[float]] = defaultdict(list)
    for evs in mine.values():
        spent: dict[str, float] = defaultdict(float)
        entered = evs[0].at
        for e in evs:
            if e.type == "project.transitioned":
                spent[e.data["from"]] += (e.at - entered).total_seconds() / 86_400
                entered = e.at
        for step, step_days in spent.items():
            stays[step].append(step_days)
    figures["median_days_per_step"] = {
        step: round(statistics.median(values), 1) for step, values in stays.items()
    }
    figures["mean_evaluation_score"] = round(statistics.fmean(scores), 2) if scores else None
    figures["satisfied"], figures["unsatisfied"] = satisfied, unsatisfied
    figures["satisfaction"] = (
        round(satisfied / (satisfied + unsatisfied), 4) if satisfied + unsatisfied else None
    )
    categories: dict[str, int] = defaultdict(int)
    for evs in mine.values():
        item = z.workflows.menu.items.get(evs[0].data.get("menu_item") or "")
        categories[item.category_id if item else "unclassified"] += 1
    figures["categories"] = dict(categories)
    return figures


def reported(figures: engine.Figures) -> dict[str, Any]:
    keys = [
        "projects_opened",
        "projects_open",
        "projects_self_managed",
        "projects_completed",
        "projects_rejected",
        "projects_cancelled",
        "demands_received",
        "demands_settled",
        "median_days_to_complete",
        "median_days_per_step",
        "mean_evaluation_score",
        "satisfied",
        "unsatisfied",
        "satisfaction",
        "categories",
    ]
    out = {k: getattr(figures, k) for k in keys}
    out["funds"] = {
        f.fund: {
            "allocated_fen": f.allocated_fen,
            "reserved_fen": f.reserved_fen,
            "spent_fen": f.spent_fen,
        }
        for f in figures.funds
    }
    return out


@pytest.fixture
def built(fresh_z: Zizhi) -> tuple[World, list[str], str, str]:
    world = World(fresh_z)
    return (world, *build(world))


def test_every_figure_is_what_the_history_says(
    built: tuple[World, list[str], str, str],
) -> None:
    world, ids, street_a, street_b = built
    z = world.z
    year = fiscal_year(z.clock())
    report = engine.annual_report(z, CLI, year=year)
    assert report.year == year
    assert [c.community_id for c in report.communities] == sorted(ids)
    for c in report.communities:
        assert reported(c) == expected(z, [c.community_id], year), c.community_id
        for fund in c.funds:
            ratio = fund.spent_fen / fund.allocated_fen if fund.allocated_fen else None
            assert fund.utilisation == (None if ratio is None else round(ratio, 4))
    streets = {s.street: s for s in report.streets}
    assert set(streets) == {street_a, street_b}
    assert reported(streets[street_a]) == expected(z, ids[:2], year)
    assert reported(streets[street_b]) == expected(z, ids[2:], year)
    assert reported(report.district) == expected(z, ids, year)
    # The figures that this data makes non-trivial, stated outright.
    assert report.district.projects_completed == 1 + 2 + 2 + 1
    assert report.district.projects_self_managed == 1
    assert report.district.mean_evaluation_score == 4
    assert report.district.satisfaction == round(40 / 42, 4)
    assert set(report.district.median_days_per_step) >= {"demand_collection", "implementation"}


def test_scope_filters_and_bad_input(built: tuple[World, list[str], str, str]) -> None:
    world, ids, street_a, street_b = built
    z = world.z
    year = fiscal_year(z.clock())
    officer = world.street_officer(street_a)
    seen = engine.annual_report(z, officer, year=year)
    assert [c.community_id for c in seen.communities] == sorted(ids[:2])
    assert reported(seen.district) == expected(z, ids[:2], year)
    with pytest.raises(NotFound):  # outside the officer's street: as if it did not exist
        engine.annual_report(z, officer, year=year, community_id=ids[2])
    with pytest.raises(NotFound):
        engine.annual_report(z, CLI, year=year, community_id="no-such-community")
    typed = f"\u3000{street_b} "  # as people type it
    only_b = engine.annual_report(z, CLI, year=year, street=typed)
    assert [c.community_id for c in only_b.communities] == [ids[2]]
    nothing = engine.annual_report(z, CLI, year=year, street="没有这个街道")
    assert (nothing.communities, nothing.streets, nothing.district.projects_opened) == ([], [], 0)
    empty = engine.annual_report(z, CLI, year=2001)  # a year with no data: zeros
    assert len(empty.communities) == 3
    assert all(c.projects_opened == 0 and c.demands_received == 0 for c in empty.communities)
    assert all(f.allocated_fen == 0 and f.utilisation is None for f in empty.district.funds)
    with pytest.raises(ValidationFailed):
        engine.annual_report(z, CLI, year=1999)


# --- through HTTP: JSON, CSV, XLSX ---------------------------------------------------------------


def test_the_api_and_its_exports_agree(built: tuple[World, list[str], str, str]) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    world, ids, street_a, _ = built
    z = world.z
    year = fiscal_year(z.clock())
    token = secret(engine.create_token(z, CLI, name="审计", role="auditor"))
    client = TestClient(create_app(z), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    answer = client.get(f"/api/v1/reports/annual?year={year}", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {"year", "communities", "streets", "district"} <= set(body)
    assert body["district"]["projects_completed"] == 6
    first = body["communities"][0]
    assert {"community_id", "name", "street", "projects_opened", "projects_completed"} <= set(first)
    assert {"fund", "allocated_fen", "reserved_fen", "spent_fen", "utilisation"} <= set(
        first["funds"][0]
    )

    csv_answer = client.get(f"/api/v1/reports/annual.csv?year={year}", headers=auth)
    assert csv_answer.status_code == 200
    assert csv_answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(csv_answer.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["层级", "社区编号", "社区"] and "新建项目" in header
    total = rows[-1]
    assert total[0] == "全区合计"
    assert int(total[header.index("办结")]) == body["district"]["projects_completed"]

    xlsx = client.get(f"/api/v1/reports/annual.xlsx?year={year}", headers=auth)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == header
    last: dict[Any, Any] = dict(zip(table[0], table[-1], strict=True))
    assert last["层级"] == "全区合计"
    district = body["district"]
    for key, label in (
        ("projects_opened", "新建项目"),
        ("projects_completed", "办结"),
        ("projects_rejected", "不予立项"),
        ("projects_cancelled", "撤销"),
        ("projects_open", "在办"),
        ("demands_received", "受理需求"),
        ("demands_settled", "办结需求"),
    ):
        assert last[label] == district[key], label
    for fund in district["funds"]:
        label = engine.Fund(fund["fund"]).label
        assert round(last[f"{label}支出（元）"] * 100) == fund["spent_fen"]
        assert round(last[f"{label}分配（元）"] * 100) == fund["allocated_fen"]
    # Summed over the community rows, the XLSX gives the district's totals.
    communities: list[dict[Any, Any]] = [
        dict(zip(table[0], r, strict=True)) for r in table[1:] if r[0] == "社区"
    ]
    assert sum(r["办结"] for r in communities) == district["projects_completed"]

    for bad in ("year=1999", "year=２０２５", "year=abc", ""):
        refused = client.get(f"/api/v1/reports/annual?{bad}", headers=auth)
        assert refused.status_code == 422, bad
    missing = client.get(
        f"/api/v1/reports/annual.xlsx?year={year}&community_id=nosuch", headers=auth
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert client.get(f"/api/v1/reports/annual?year={year}").status_code == 401
    json.dumps(body)  # plain JSON all through


def test_exports_never_hand_a_spreadsheet_a_formula(fresh_z: Zizhi) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    engine.create_community(
        fresh_z,
        CLI,
        id="evil",
        name='=HYPERLINK("http://x","点我")',
        street="+街道",
        district="@区",
        kind="urban",
    )
    token = secret(engine.create_token(fresh_z, CLI, name="审计", role="auditor"))
    client = TestClient(create_app(fresh_z))
    auth = {"Authorization": f"Bearer {token}"}
    year = fiscal_year(fresh_z.clock())
    text = client.get(f"/api/v1/reports/annual.csv?year={year}", headers=auth).text
    assert "'=HYPERLINK" in text and "'+街道" in text
    xlsx = client.get(f"/api/v1/reports/annual.xlsx?year={year}", headers=auth).content
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet is not None
    names = [
        c for row in sheet.iter_rows() for c in row if c.value == '=HYPERLINK("http://x","点我")'
    ]
    assert names and all(c.data_type == "s" for c in names)


def test_report_pages_answer_for_any_year_and_only_to_whom_they_are_for(z: Zizhi) -> None:
    from tests.api.web_client import browser, sign_in, user

    world = World(z)
    community = world.community()
    client = browser(z)
    this_year = fiscal_year(z.clock())
    assert client.get("/public/reports", follow_redirects=False).headers["location"] == (
        f"/public/reports/{this_year - 1}"
    )
    for year in (2001, this_year, 2100):  # no data: zeros, a page all the same
        page = client.get(f"/public/reports/{year}")
        assert page.status_code == 200 and page.text.count('<svg class="chart"') == 4
    assert client.get("/public/reports/1999").status_code == 404
    assert client.get("/reports/2025", follow_redirects=False).status_code == 303  # sign in
    committee = user(z, new_id("u"), "committee", communities=[community])
    assert sign_in(client, committee).status_code == 303
    assert client.get(f"/reports/{this_year}").status_code == 403
    street = user(z, new_id("s"), "street", streets=[world.street_of(community)])
    officer = browser(z)
    assert sign_in(officer, street).status_code == 303
    mine = officer.get(f"/reports/{this_year}")
    assert mine.status_code == 200 and f"测试社区{community}" in mine.text
    assert officer.get(f"/reports/{this_year}?street=%00").status_code == 422
