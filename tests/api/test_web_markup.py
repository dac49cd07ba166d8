"""Every page as markup: served whole by the app (no CDN), readable without JavaScript, in
Chinese, a label on every input; and the stylesheet's text colours readable on their
backgrounds (WCAG AA, 4.5:1).

The pages are fetched for each role, over HTTP on a real SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import engine
from api.web import STATIC_DIR
from engine import Zizhi
from tests.api.web_client import browser, sign_in, submit, user
from tests.factories import World, new_id

AA = 4.5


class Markup(HTMLParser):
    """What a page asks of the browser: scripts, addresses, inputs and their labels."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts = 0
        self.addresses: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.open_labels = 0
        self.lang: str | None = None
        self.viewport = False
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "script":
            self.scripts += 1
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = True
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href") or "")
        for name in ("src", "href", "action", "srcset", "formaction", "poster", "data"):
            if a.get(name):
                self.addresses.append(str(a[name]))
        if any(name.startswith("on") for name in a):
            self.scripts += 1  # an inline handler is script too
        if tag == "label":
            self.open_labels += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.inputs.append({**a, "_in_label": "1" if self.open_labels else None, "_tag": tag})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels -= 1


def _check(path: str, html: str) -> None:
    page = Markup()
    page.feed(html)
    assert page.lang == "zh-CN", path
    assert page.viewport, path  # laid out for a phone's width
    assert page.scripts == 0, path  # nothing needs JavaScript
    assert page.stylesheets == ["/static/zizhi.css"], path
    for address in page.addresses:
        off_site = re.match(r"^\s*([a-z][a-z0-9+.-]*:|//|\\\\)", address, re.I)
        assert off_site is None, (path, address)  # served by the app itself: no CDN
    for field in page.inputs:
        labelled = (
            field["_in_label"]
            or (field.get("id") and field["id"] in page.label_for)
            or field.get("aria-label")
        )
        assert labelled, (path, field)


def test_every_page_is_served_by_the_app_needs_no_script_and_labels_every_input(
    z: Zizhi, world: World
) -> None:
    community = world.community()
    street = world.street_of(community)
    committee = world.committee(community)
    year = engine.fiscal_year(z.clock())
    projects = {
        state: world.advance(world.project(community, committee=committee), state)
        for state in ("demand_collection", "planning", "review", "implementation", "feedback")
    }
    engine.record_demand(z, committee, community, {"content": "路灯坏了", "resident": "张大爷"})
    people = {
        "committee": user(z, new_id("u"), "committee", communities=[community]),
        "street": user(z, new_id("s"), "street", streets=[street]),
        "auditor": user(z, new_id("a"), "auditor"),
    }
    project_pages = [f"/projects/{p.id}" for p in projects.values()]
    pages = {
        "committee": [
            "/",
            *project_pages,
            "/projects/new",
            f"/communities/{community}/demands",
            f"/communities/{community}/statement",
        ],
        "street": [
            "/street",
            *project_pages,
            "/audit",
            f"/communities/{community}/statement",
            "/reports",
            f"/reports/{year}",
        ],
        "auditor": [
            "/audit",
            f"/audit?community_id={community}",
            "/audit/verify",
            "/audit/access",
            *project_pages,
        ],
    }
    seen = 0
    for role, paths in pages.items():
        with browser(z) as client:
            sign_in(client, people[role])
            for path in paths:
                answer = client.get(path)
                assert answer.status_code == 200, (role, path)
                _check(path, answer.text)
                seen += 1
            if role == "committee":  # a refused form, its messages beside the fields
                refused = submit(
                    client, project_pages[1], "form-submit_plan", {"budget_fen": "x", "plan": ""}
                )
                assert refused.status_code == 422
                _check("refused", refused.text)
    with browser(z) as anonymous:
        for path in (
            "/login",
            "/public",
            f"/public/{community}",
            "/public/reports",
            f"/public/reports/{year}",
            "/no/such/page",
        ):
            answer = anonymous.get(path, headers={"accept": "text/html"})
            assert answer.status_code in (200, 404), path
            _check(path, answer.text)
            seen += 1
    assert seen == 34


def test_the_stylesheet_is_served_by_the_app_and_loads_nothing_from_elsewhere(
    z: Zizhi,
) -> None:
    with browser(z) as anonymous:
        answer = anonymous.get("/static/zizhi.css")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/css")
    assert "@import" not in answer.text and "url(" not in answer.text
    assert "@font-face" not in answer.text  # the system's CJK fonts, nothing downloaded


def _rgb(value: str, root: dict[str, str]) -> tuple[float, ...] | None:
    value = value.strip().split()[0]
    named = re.fullmatch(r"var\((--[\w-]+)\)", value)
    if named:
        value = root[named.group(1)].strip()
    if not re.fullmatch(r"#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}", value):
        return None
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return tuple(int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))


def _contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    def luminance(c: tuple[float, ...]) -> float:
        r, g, b = (x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_text_colour_in_the_stylesheet_has_enough_contrast() -> None:
    css = re.sub(r"/\*.*?\*/", "", (STATIC_DIR / "zizhi.css").read_text("utf-8"), flags=re.S)
    root_block = re.search(r":root\s*\{([^}]*)\}", css)
    assert root_block
    root = dict(re.findall(r"(--[\w-]+):\s*([^;]+);", root_block.group(1)))
    white, page, header = _rgb("#fff", root), _rgb("var(--bg)", root), _rgb("#f0f2f5", root)
    brand = _rgb("var(--brand)", root)
    checked = 0
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        selector = selector.strip()
        props = {k: v.strip() for k, v in re.findall(r"([\w-]+)\s*:\s*([^;]+)", body)}
        if "color" not in props or props["color"] == "inherit":
            continue
        text = _rgb(props["color"], root)
        assert text is not None, selector
        own = _rgb(props.get("background", props.get("background-color", "none")), root)
        backgrounds: list[tuple[float, ...] | None]
        if own is not None:
            backgrounds = [own]  # the rule sets its own background
        elif selector.startswith((".top", ".brand", ".signout", "button.link")):
            backgrounds = [brand]  # inside the header bar
        elif selector.startswith(("input", "::placeholder")):
            backgrounds = [white]  # inside a form field
        else:
            backgrounds = [white, page, header]  # a card, the page, a table heading
        for background in backgrounds:
            assert background is not None
            ratio = _contrast(text, background)
            assert ratio >= AA, (selector, round(ratio, 2))
            checked += 1
    assert checked > 40
