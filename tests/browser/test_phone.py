"""On a 375-px phone with JavaScript switched off: every page fits the screen's width (wide
tables scroll inside their own box), the fund figures' labels stay on one line, and a form
still does its work."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, ViewportSize, expect

import engine
from tests.browser.conftest import Site, sign_in
from tests.browser.test_committee_journey import act

PHONE: ViewportSize = {"width": 375, "height": 800}
# Lines a fund figure's label takes: its height over its line height.
LABEL_LINES = """() => Array.from(document.querySelectorAll('figure.fund dt')).map(dt => {
  const style = getComputedStyle(dt);
  return Math.round(dt.getBoundingClientRect().height / parseFloat(style.lineHeight));
})"""


def fits(page: Page, path: str) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (path, width)
    assert set(page.evaluate(LABEL_LINES)) <= {1}, (path, page.evaluate(LABEL_LINES))


def test_a_phone_without_javascript_shows_every_page_whole_and_submits_forms(
    browser: Browser, site: Site
) -> None:
    committee = site.committee_principal
    project = engine.open_project(
        site.z,
        committee,
        community_id=site.community,
        workflow="self_governance",
        title="楼道照明改造（一号楼至十二号楼全部单元）",
        menu_item="C0101",
    )
    engine.add_to_project(site.z, committee, project.id, {"content": "楼道太暗", "resident": "吴"})
    for action, data in (("close_collection", {}), ("accept", {"note": "同意"})):
        engine.fire(site.z, committee, project.id, action, data)

    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{site.base}/login")
    fits(page, "/login")
    sign_in(page, site, site.committee)
    for path in (
        "/",
        f"/projects/{project.id}",
        "/projects/new",
        f"/communities/{site.community}/demands",
        f"/communities/{site.community}/statement",
        f"/public/{site.community}",
        "/public",
    ):
        page.goto(f"{site.base}{path}")
        fits(page, path)

    # A form without JavaScript: a budget typed in yuan moves the project on.
    page.goto(f"{site.base}/projects/{project.id}")
    act(page, "submit_plan", budget_fen="8,000", plan="更换声控灯")
    expect(page.locator(".badge")).to_have_text("评议")
    expect(page.locator("#budget")).to_have_text("¥8,000.00")
    fits(page, "after submit_plan")
    context.close()

    for username, paths in (
        (site.officer, ("/street", f"/projects/{project.id}", "/reports")),
        (site.auditor, ("/audit", f"/audit?community_id={site.community}", "/audit/verify")),
    ):
        context = browser.new_context(viewport=PHONE, java_script_enabled=False)
        page = context.new_page()
        sign_in(page, site, username)
        expect(page).not_to_have_url(re.compile(r"/login"))
        for path in paths:
            page.goto(f"{site.base}{path}")
            fits(page, path)
        context.close()
