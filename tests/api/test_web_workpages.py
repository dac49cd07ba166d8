"""The working pages over HTTP, beyond sign-in: fund bars, the demand pool, the street's
allocations, the auditor's search, statement and exports, and forms drawn from a workflow
definition that the templates have never seen.

Every test runs on a real SQLite file and on PostgreSQL, through the real app.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

import engine
from engine import CLI, Zizhi
from tests.api.web_client import browser, form_html, sign_in, submit, user
from tests.factories import World, new_id, with_version_2


def _bar(html: str, fund: str) -> dict[str, float]:
    figure = html[html.index(f'data-fund="{fund}"') :]
    figure = figure[: figure.index("</figure>")]
    return {
        kind: float(width)
        for width, kind in re.findall(r'<rect [^>]*width="([\d.]+)"[^>]*class="(\w+)"', figure)
    }


def test_the_fund_bars_are_svg_drawn_from_the_engine_s_figures(z: Zizhi, world: World) -> None:
    community = world.community()
    project = world.advance(world.project(community), "implementation", budget_fen=1_000_000)
    engine.record_expense(
        z,
        world.committee(community),
        project.id,
        {"amount_fen": 250_000, "payee": "施工队", "invoice_no": "INV-1", "description": "材料"},
    )
    done = world.advance(world.project(community), "completed", budget_fen=100_000)
    username = user(z, new_id("u"), "committee", communities=[community])
    with browser(z) as client:
        sign_in(client, username)
        html = client.get("/").text
    # What waits on the committee: the project it can move on, not the one closed.
    waiting = html[html.index("待我办理") : html.index("本年度项目")]
    assert f'href="/projects/{project.id}"' in waiting
    assert f'href="/projects/{done.id}"' not in waiting
    steps = re.findall(r"<h4>(\S+) <span", html)  # this year's projects, grouped by step
    assert steps == ["实施", "已办结"]
    # ¥50,000.00 allocated by default: ¥2,500 spent is 5 %, the ¥7,500 still reserved 15 %
    # (the closed project spent nothing; closing released its reservation).
    assert _bar(html, "self_governance") == {"available": 100.0, "spent": 5.0, "reserved": 15.0}
    assert 'aria-label="已支出 ¥2,500.00，已预留 ¥7,500.00，可用 ¥40,000.00"' in html
    assert "分配 ¥50,000.00" in html
    assert "<script" not in html  # drawn on the server, not in the browser


def test_a_demand_recorded_in_the_pool_is_attached_to_a_new_project(z: Zizhi, world: World) -> None:
    community = world.community()
    username = user(z, new_id("u"), "committee", communities=[community])
    pool = f"/communities/{community}/demands"
    with browser(z) as client:
        sign_in(client, username)
        refused = submit(client, pool, "form-demand", {"content": "　", "resident": "陈阿姨"})
        assert refused.status_code == 422 and 'value="陈阿姨"' in refused.text
        assert engine.list_demands(z, CLI, community_id=community, pool=True).items == []
        answer = submit(
            client, pool, "form-demand", {"content": "健身器材损坏", "resident": "陈阿姨"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == pool
        assert "健身器材损坏" in client.get(pool).text
        [demand] = engine.list_demands(z, CLI, community_id=community, pool=True).items

        opened = client.post(
            "/projects",
            data={
                **_hidden(client.get(f"/projects/new?community={community}").text),
                "community_id": community,
                "workflow": "self_governance",
                "title": "修复健身器材",
                "menu_item": "C0101",
            },
            follow_redirects=False,
        )
        assert opened.status_code == 303
        page = opened.headers["location"]
        assert f'<option value="{demand.id}">' in form_html(client.get(page).text, "form-pool")
        attached = submit(client, page, "form-pool", {"demand_id": str(demand.id)})
        assert attached.status_code == 303
        assert "健身器材损坏" in client.get(page).text
    project_id = int(page.rsplit("/", 1)[1])
    [linked] = engine.list_demands(z, CLI, project_id=project_id).items
    assert linked.id == demand.id
    assert engine.list_demands(z, CLI, community_id=community, pool=True).items == []


def test_a_street_officer_sets_an_allocation_typed_in_yuan(z: Zizhi, world: World) -> None:
    community = world.community()
    officer = user(z, new_id("s"), "street", streets=[world.street_of(community)])
    year = engine.fiscal_year(z.clock())

    def allocated() -> int:
        [fund] = [
            f for f in engine.funds(z, CLI, community, year=year) if f.fund == "self_governance"
        ]
        return fund.allocated_fen

    with browser(z) as client:
        sign_in(client, officer)
        html = client.get("/street").text
        form_id = f"alloc-{community}-self_governance"
        start = html.rindex("<form", 0, html.index(f'id="{form_id}"'))
        action = re.search(r'action="([^"]+)"', html[start:])
        assert action
        hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html[start:])[:3])
        refused = client.post(
            action.group(1), data={**hidden, "allocated": "六万元"}, follow_redirects=False
        )
        assert refused.status_code == 409
        assert "金额格式无法识别" in refused.text and 'value="六万元"' in refused.text
        assert allocated() == 5_000_000
        answer = client.post(
            action.group(1), data={**hidden, "allocated": "¥60,000.5"}, follow_redirects=False
        )
        assert answer.status_code == 303
        assert allocated() == 6_000_050
        assert "¥60,000.50" in client.get("/street").text


def test_an_auditor_searches_by_every_filter_reads_the_statement_and_exports(
    z: Zizhi, world: World
) -> None:
    community = world.community()
    street = world.street_of(community)
    project = world.advance(world.project(community), "implementation", budget_fen=1_000_000)
    world.project(world.community())  # another community's history, not to be found
    auditor = user(z, new_id("a"), "auditor")
    day = engine.fiscal_year(z.clock())
    today = z.clock().astimezone(engine.FISCAL_TZ).date().isoformat()
    search = {
        "community_id": community,
        "street": street,
        "project_id": str(project.id),
        "actor": "",
        "type": "project.transitioned",
        "since": today,
        "until": today,
    }
    with browser(z) as client:
        sign_in(client, auditor)
        page = client.get("/audit", params=search)
        assert page.status_code == 200
        rows = re.findall(r"<tr>.*?</tr>", page.text.split("<tbody>", 1)[1], re.S)
        assert len(rows) == 4  # close_collection, accept, submit_plan, approve
        assert all("project.transitioned" in r for r in rows)
        for name, value in search.items():
            if value:
                assert f'name="{name}" type="text" value="{value}"' in page.text, name
        query = re.search(r'href="/audit/events\.csv\?([^"]+)"', page.text)
        assert query
        exported = client.get("/audit/events.csv?" + query.group(1).replace("&amp;", "&"))
        assert exported.status_code == 200
        lines = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert [r["type"] for r in lines] == ["project.transitioned"] * 4
        jsonl = client.get("/audit/events.jsonl?" + query.group(1).replace("&amp;", "&"))
        records = [json.loads(line) for line in jsonl.text.splitlines()]
        assert [r["project_id"] for r in records] == [project.id] * 4

        bad = client.get("/audit", params={"since": "2026-13-01", "project_id": "三"})
        assert bad.status_code == 422
        assert "日期无效" in bad.text and "项目编号应为数字" in bad.text
        assert 'value="2026-13-01"' in bad.text

        statement = client.get(f"/communities/{community}/statement", params={"year": day})
        assert statement.status_code == 200
        balances = re.findall(r'data-label="可用余额" class="num">([^<]+)<', statement.text)
        assert balances[-2:] == ["¥50,000.00", "¥40,000.00"]  # allocated, then reserved


def _hidden(html: str) -> dict[str, str]:
    start = html.index('action="/projects"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_new_workflow_version_s_fields_appear_in_its_forms(fresh_z: Zizhi) -> None:
    # A database of its own: the other tests' engines do not know version 2.
    z = fresh_z
    community = World(z).community()
    old = World(z).advance(World(z).project(community), "review")  # opened under v1
    v2 = Zizhi(z.db, with_version_2())  # the same database, a registry that knows v2
    world = World(v2)
    new = world.advance(world.project(community), "review")
    assert old.workflow_version == 1
    assert new.workflow_version == 2
    username = user(v2, new_id("u"), "committee", communities=[community])
    with browser(v2) as client:
        sign_in(client, username)
        form = form_html(client.get(f"/projects/{new.id}").text, "form-approve")
        assert '<label for="approve-minutes">会议纪要' in form
        assert "会议纪要" not in form_html(client.get(f"/projects/{old.id}").text, "form-approve")
        vote = {
            "council_size": "9",
            "attendees": "7",
            "votes_for": "6",
            "votes_against": "1",
            "abstentions": "0",
        }
        answer = submit(
            client, f"/projects/{new.id}", "form-approve", {**vote, "minutes": "全体同意"}
        )
        assert answer.status_code == 303
        # An action only v2 has gets a form of its own, from its definition alone.
        at_feedback = world.advance(engine.get_project(v2, CLI, new.id), "feedback")
        form = form_html(client.get(f"/projects/{at_feedback.id}").text, "form-publish")
        assert "张贴公示" in form and '<label for="publish-board_note">公示栏说明' in form
    [approved] = [
        e for e in engine.project_history(v2, CLI, new.id) if e.data.get("action") == "approve"
    ]
    assert approved.data["fields"]["minutes"] == "全体同意"


def test_an_unexpected_failure_is_a_chinese_page_without_a_stack_trace(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals /etc/zizhi.conf")

    monkeypatch.setattr(engine, "public_streets", broken)
    with browser(z) as anonymous:
        answer = anonymous.get("/public")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "服务器内部错误" in answer.text
    for leak in ("Traceback", 'File "', "RuntimeError", "secret internals"):
        assert leak not in answer.text
