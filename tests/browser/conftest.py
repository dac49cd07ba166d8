"""A real server (``zizhi serve``) on a real database, and Debian's headless Chromium.

The browser is the system's ``/usr/bin/chromium`` driven by Playwright; nothing is
downloaded. ``.ci/run`` installs the package when it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

import engine
from engine import CLI, Database, Principal, Role, Zizhi
from tests.conftest import DatabaseFactory
from tests.e2e.server import serve
from tests.factories import new_id
from workflows import load_registry

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse 电池"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass(frozen=True, slots=True)
class Site:
    base: str
    z: Zizhi  # the same database the server uses, for setting the scene through the engine
    community: str
    community_name: str
    street: str
    committee: str
    officer: str
    auditor: str
    backend: str

    @property
    def committee_principal(self) -> Principal:
        """The committee user, as the engine sees it (for setting the scene)."""
        return Principal(
            id=f"user:{self.committee}",
            name=self.committee,
            role=Role.committee,
            communities=frozenset({self.community}),
        )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    # Generous waits: the machine running the suite may be busy; nothing here is timed.
    expect.set_options(timeout=60_000)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture
def site(backend: str, databases: DatabaseFactory) -> Iterator[Site]:
    db: Database = databases.new(backend)
    url = db.url.render_as_string(hide_password=False)
    z = Zizhi(db, load_registry())
    community, street = new_id(), f"{new_id('街')}街道"
    name = "里河社区"
    engine.create_community(
        z, CLI, id=community, name=name, street=street, district="姑苏区", kind="urban"
    )
    engine.create_community(
        z, CLI, id=new_id(), name="三元社区", street=street, district="姑苏区", kind="urban"
    )
    committee, officer, auditor = f"{community}", "jinchang", "auditor"
    for username, role, communities, streets in (
        (committee, "committee", [community], []),
        (officer, "street", [], [street]),
        (auditor, "auditor", [], []),
    ):
        engine.create_user(
            z,
            CLI,
            username=username,
            role=role,
            password=PASSWORD,
            communities=communities,
            streets=streets,
        )
    with serve(url) as (base, _):
        yield Site(base, z, community, name, street, committee, officer, auditor, backend)


def sign_in(page: Page, site: Site, username: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(f"{site.base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def shoot(page: Page, name: str) -> None:
    """Screenshots of the page at phone and desktop widths, for docs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
