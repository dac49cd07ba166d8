"""The annual report pages in a real browser, on a small demo district with years behind it:
the auditors' report and the public summary draw their charts, and the public one shows no
resident's name."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

import engine
from demo.district import DemoResult, generate
from engine import CLI, Principal, Role, Zizhi
from tests.browser.conftest import shoot
from tests.conftest import DatabaseFactory
from tests.e2e.server import serve
from workflows import load_registry

AUDITOR = Principal(id="token:test", name="审计", role=Role.auditor)  # sees residents' names


@pytest.fixture
def demo_site(backend: str, databases: DatabaseFactory) -> Iterator[tuple[str, Zizhi, DemoResult]]:
    db = databases.new(backend)
    z = Zizhi(db, load_registry())
    result = generate(z, communities=8, years=3, seed=5)
    with serve(db.url.render_as_string(hide_password=False)) as (base, _):
        yield base, z, result


def test_report_pages_draw_their_charts(
    browser: Browser, demo_site: tuple[str, Zizhi, DemoResult], backend: str
) -> None:
    base, z, demo = demo_site
    last_year = demo.years[-2]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)

    page.goto(f"{base}/public/reports/{last_year}")
    expect(page.locator("h1")).to_contain_text(f"{last_year} 年度")
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    assert page.locator("svg.chart rect").count() > 8
    report = engine.annual_report(z, CLI, year=last_year)
    body = page.locator("main").inner_text()
    assert str(report.district.projects_completed) in body
    residents = {
        d.resident
        for c in demo.places
        for d in engine.every(
            lambda cursor, c=c: engine.list_demands(  # type: ignore[misc]
                z, AUDITOR, community_id=c.id, limit=500, cursor=cursor
            )
        )
    }
    assert residents and None not in residents
    assert not [r for r in residents if r and r in body]
    if backend == "sqlite":
        shoot(page, "report-public")
    # Printed: the site's header, footer and year links give way; the charts stay; A4.
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("footer.foot")).to_be_hidden()
    expect(page.locator("nav.report-years")).to_be_hidden()
    expect(page.locator("svg.chart").first).to_be_visible()
    assert page.locator("svg.chart:visible").count() == 4
    pdf = page.pdf(prefer_css_page_size=True)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", pdf)
    assert boxes and {(round(float(w)), round(float(h))) for w, h in boxes} == {(595, 842)}
    page.emulate_media(media="screen")

    page.goto(f"{base}/reports/{last_year}")  # signs in first, then comes back
    page.get_by_label("用户名").fill("auditor")
    page.get_by_label("密码").fill(demo.password)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_contain_text(f"{last_year} 年度居民自治项目报表")
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.get_by_role("link", name="下载 Excel")).to_be_visible()
    if backend == "sqlite":
        shoot(page, "report")
    context.close()
