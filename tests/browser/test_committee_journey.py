"""A committee member runs a project from first demand to closing, in a real browser.

Every step goes through the page's forms — generated from the workflow definition — with
amounts typed in yuan as people type them; the fund bars move; a failed quorum is refused
in Chinese with what was typed kept; the public board shows the project and no resident's
name. A street officer, in a second browser context, approves a party-service project.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

import engine
from tests.browser.conftest import Site, shoot, sign_in
from tests.factories import VOTE

RESIDENT = "王阿姨"


def fund_figure(page: Page, fund: str, which: str) -> str:
    return page.locator(f'figure.fund[data-fund="{fund}"] dd.{which}').first.inner_text()


def act(page: Page, action: str, **typed: str) -> None:
    form = page.locator(f"#form-{action}")
    for name, value in typed.items():
        form.locator(f'[name="{name}"]').fill(value)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def test_a_committee_runs_a_project_through_every_step_in_the_browser(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    shots = site.backend == "sqlite"
    page.goto(f"{site.base}/")
    expect(page).to_have_url(re.compile(r"/login$"))
    if shots:
        shoot(page, "login")
    sign_in(page, site, site.committee)
    expect(page.locator("h1")).to_contain_text("年度工作台")
    assert fund_figure(page, "self_governance", "available-fen") == "¥50,000.00"

    # Open a project and record the residents' demand.
    page.get_by_role("link", name="新建项目").first.click()
    page.get_by_label("项目类型").select_option("self_governance")
    page.get_by_label("项目名称").fill("消防通道清障")
    page.get_by_label("菜单项目").select_option("C0101")
    page.get_by_role("button", name="创建项目").click()
    expect(page.locator(".badge")).to_have_text("需求征集")
    project_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    act(
        page,
        "demand",
        content="3 号楼消防通道被杂物堵塞 <script>alert(1)</script>",
        resident=RESIDENT,
    )
    expect(page.locator("#demands")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#demands")).to_contain_text(RESIDENT)

    act(page, "close_collection")
    expect(page.locator(".badge")).to_have_text("筛选")
    act(page, "accept", note="属于房前屋后急难事")
    expect(page.locator(".badge")).to_have_text("方案编制")

    # A budget over the fund is refused beside the form, and what was typed stays.
    act(page, "submit_plan", budget_fen="¥60,000", plan="清理杂物，设置隔离桩")
    expect(page.locator("#form-submit_plan .notice")).to_contain_text("可用")
    expect(page.locator('#form-submit_plan [name="budget_fen"]')).to_have_value("¥60,000")
    expect(page.locator('#form-submit_plan [name="plan"]')).to_have_value("清理杂物，设置隔离桩")
    act(page, "submit_plan", budget_fen="１２,３４５.６７", plan="清理杂物，设置隔离桩")
    expect(page.locator("#budget")).to_have_text("¥12,345.67")
    expect(page.locator(".badge")).to_have_text("评议")

    # The council's vote without a quorum: a Chinese refusal, the numbers kept.
    act(
        page,
        "approve",
        council_size="9",
        attendees="3",
        votes_for="3",
        votes_against="0",
        abstentions="0",
    )
    refusal = page.locator("#form-approve .notice")
    expect(refusal).to_contain_text("法定人数")
    expect(page.locator('#form-approve [name="attendees"]')).to_have_value("3")
    expect(page.locator(".badge")).to_have_text("评议")
    if shots:
        shoot(page, "project-refused")

    act(
        page,
        "approve",
        council_size="9",
        attendees="7",
        votes_for="6",
        votes_against="1",
        abstentions="0",
    )
    expect(page.locator(".badge")).to_have_text("实施")
    expect(page.locator("#reserved")).to_have_text("¥12,345.67")

    page.goto(f"{site.base}/")
    assert fund_figure(page, "self_governance", "available-fen") == "¥37,654.33"
    assert fund_figure(page, "self_governance", "reserved-fen") == "¥12,345.67"
    if shots:
        shoot(page, "home")

    # An expense with payee and invoice; a double click records it once.
    page.goto(f"{site.base}/projects/{project_id}")
    form = page.locator("#form-expense")
    form.locator('[name="amount_fen"]').fill("¥ 1,000.50")
    form.locator('[name="payee"]').fill("姑苏保洁服务社")
    form.locator('[name="invoice_no"]').fill("FP-2026-001")
    form.locator('[name="description"]').fill("清运杂物")
    form.locator("button[type=submit]").dblclick()
    # The second click aborts the first navigation; the page lands on the list once both
    # answers are in (the same idempotency key makes them one expense).
    expect(page).to_have_url(re.compile(r"#expenses$"))
    page.reload()
    expect(page.locator("#spent")).to_have_text("¥1,000.50")
    expect(page.locator("#expenses tbody tr")).to_have_count(1)

    act(page, "complete_implementation", report="通道已清空，隔离桩已安装")
    act(page, "evaluate", score="５", report="居民满意")
    act(page, "close", notice="消防通道已恢复畅通，感谢居民支持", satisfied="46", unsatisfied="2")
    expect(page.locator(".badge")).to_have_text("已办结")
    expect(page.locator(".timeline")).to_contain_text("办结：反馈 → 已办结")
    if shots:
        shoot(page, "project")

    page.goto(f"{site.base}/")
    assert fund_figure(page, "self_governance", "spent-fen") == "¥1,000.50"
    assert fund_figure(page, "self_governance", "available-fen") == "¥48,999.50"

    # The public board, without signing in: the project, its notice, no resident's name.
    public = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    public.set_default_timeout(60_000)
    public.goto(f"{site.base}/public/{site.community}")
    board = public.locator("main")
    expect(board).to_contain_text("消防通道清障")
    expect(board).to_contain_text("消防通道已恢复畅通")
    expect(board).to_contain_text("¥1,000.50")
    assert RESIDENT not in public.content()
    if shots:
        shoot(public, "public-board")
        public.goto(f"{site.base}/public")
        shoot(public, "public")
    context.close()


def test_a_street_officer_approves_a_party_service_project_in_a_second_context(
    browser: Browser, site: Site
) -> None:
    committee = site.committee_principal
    z = site.z
    project = engine.open_project(
        z,
        committee,
        community_id=site.community,
        workflow="party_service",
        title="老年助餐点",
        category="特殊人群类",
    )
    engine.add_to_project(z, committee, project.id, {"content": "老人吃饭难", "resident": "李伯"})
    for action, data in (
        ("close_collection", {}),
        ("accept", {"note": "急需"}),
        ("submit_plan", {"budget_fen": 8_000_000, "plan": "租用场地，采购餐具"}),
        ("approve", VOTE),
    ):
        engine.fire(z, committee, project.id, action, data)

    committee_page = browser.new_context().new_page()
    sign_in(committee_page, site, site.committee)
    committee_page.goto(f"{site.base}/projects/{project.id}")
    expect(committee_page.locator(".badge")).to_have_text("街道审核")
    expect(committee_page.locator("#form-street_approve")).to_have_count(0)

    officer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(officer, site, site.officer)
    expect(officer).to_have_url(re.compile(r"/street$"))
    waiting = officer.locator("#waiting")
    expect(waiting).to_contain_text("老年助餐点")
    assert fund_figure(officer, "party_service", "available-fen") == "¥200,000.00"
    assert "李伯" not in officer.content()
    if site.backend == "sqlite":
        shoot(officer, "street")
    waiting.get_by_role("link", name="老年助餐点").click()
    act(officer, "street_approve", note="同意，按方案实施")
    expect(officer.locator(".badge")).to_have_text("实施")
    assert "李伯" not in officer.content()

    officer.goto(f"{site.base}/street")
    expect(officer.locator("#waiting")).not_to_contain_text("老年助餐点")
    assert fund_figure(officer, "party_service", "reserved-fen") == "¥80,000.00"

    # The committee's page, reloaded, shows the new step and offers expenses.
    committee_page.reload()
    expect(committee_page.locator(".badge")).to_have_text("实施")
    expect(committee_page.locator("#form-expense")).to_have_count(1)


def test_an_auditor_searches_the_history_and_verifies_the_chain(
    browser: Browser, site: Site
) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, site, site.auditor)
    expect(page).to_have_url(re.compile(r"/audit$"))
    page.get_by_label("社区编号").fill(site.community)
    page.get_by_role("button", name="查询").click()
    expect(page.locator("table.events")).to_contain_text("community.created")
    if site.backend == "sqlite":
        shoot(page, "audit")
    page.get_by_role("link", name="校验哈希链").click()
    expect(page.locator(".notice")).to_contain_text("校验通过")
    # The Merkle tree too, one click further: the whole district's auditor is offered it.
    page.get_by_role("link", name="再校验默克尔树").click()
    expect(page.locator(".notice")).to_contain_text("片叶子，节点、叶子位置与时间块均与事件一致")
    if site.backend == "sqlite":
        shoot(page, "verify-tree")
    # Who looked at what: the search above, narrowed to this auditor as a person types it.
    page.goto(f"{site.base}/audit")
    page.get_by_role("link", name="查阅记录").click()
    page.get_by_label("操作者").fill(f" user:{site.auditor}\u3000")
    page.get_by_role("button", name="筛选").click()
    records = page.locator("table")
    expect(records).to_contain_text("查询历史")
    expect(records).to_contain_text(f"community_id={site.community}")
    expect(page.get_by_label("操作者")).to_have_value(f"user:{site.auditor}")
    if site.backend == "sqlite":
        shoot(page, "access-log")
