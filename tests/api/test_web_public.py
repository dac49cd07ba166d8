"""The public pages, without signing in: notice boards and the residents' demand intake."""

from __future__ import annotations

import re

import engine
from engine import Zizhi
from engine.usecases import public_board
from tests.api.web_client import browser, csrf_of, new_address
from tests.factories import World


def _pool(z: Zizhi, community: str) -> list[engine.DemandView]:
    # Through the eyes of the community's committee, who may read residents' names.
    committee = World.committee(community)
    return engine.list_demands(z, committee, community_id=community, pool=True).items


def test_the_board_shows_this_years_projects_and_never_a_residents_name(
    z: Zizhi, world: World
) -> None:
    community = world.community()
    committee = world.committee(community)
    world.advance(world.project(community, committee=committee), "completed", budget_fen=1_234_567)
    world.advance(world.project(community, committee=committee), "review")
    engine.record_demand(
        z,
        committee,
        community,
        {"content": "楼道灯坏了", "resident": "赵阿婆", "contact": "13800000000"},
    )
    with browser(z) as resident:
        board = resident.get(f"/public/{community}")
        assert board.status_code == 200
        text = board.text
        assert "消防通道改善" in text and "已办结" in text and "评议" in text
        assert "¥12,345.67" in text  # the budget
        assert "项目已办结" in text  # the closing notice
        assert "赞成 6" in text and "出席 7" in text  # the council's vote
        for personal in ("王老伯", "赵阿婆", "13800000000"):
            assert personal not in text
        index = resident.get("/public").text
        assert f'href="/public/{community}"' in index and world.street_of(community) in index


def test_a_residents_demand_goes_into_the_pool_without_an_account(z: Zizhi, world: World) -> None:
    community = world.community()
    with browser(z) as resident:
        board = resident.get(f"/public/{community}")
        answer = resident.post(
            f"/public/{community}/demands",
            data={
                "csrf": csrf_of(board.text),
                "content": "　小区门口的路面坑洼，雨天积水　",
                "resident": "钱先生",
                "contact": "",
                "website": "",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "已收到您的需求" in resident.get(answer.headers["location"]).text
    [demand] = _pool(z, community)
    assert demand.source == "public" and "路面坑洼" in demand.content
    assert demand.resident == "钱先生" and demand.contact is None


def test_a_filled_honeypot_is_thanked_and_ignored(z: Zizhi, world: World) -> None:
    community = world.community()
    with browser(z) as bot:
        board = bot.get(f"/public/{community}")
        answer = bot.post(
            f"/public/{community}/demands",
            data={
                "csrf": csrf_of(board.text),
                "content": "buy now",
                "resident": "bot",
                "website": "http://spam.example",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303
    assert _pool(z, community) == []


def test_the_intake_is_rate_limited_per_address(z: Zizhi, world: World) -> None:
    community = world.community()
    address = new_address()
    with browser(z, address=address) as resident:
        csrf = csrf_of(resident.get(f"/public/{community}").text)
        for i in range(public_board.INTAKE_LIMIT):
            answer = resident.post(
                f"/public/{community}/demands",
                data={"csrf": csrf, "content": f"需求{i}", "resident": "孙"},
                follow_redirects=False,
            )
            assert answer.status_code == 303
        answer = resident.post(
            f"/public/{community}/demands",
            data={"csrf": csrf, "content": "再来一条", "resident": "孙"},
            follow_redirects=False,
        )
        assert answer.status_code == 429 and "提交过于频繁" in answer.text
        assert "再来一条" in answer.text  # kept in the form
    assert len(_pool(z, community)) == public_board.INTAKE_LIMIT
    with browser(z) as neighbour:  # another address is not held up
        csrf = csrf_of(neighbour.get(f"/public/{community}").text)
        answer = neighbour.post(
            f"/public/{community}/demands",
            data={"csrf": csrf, "content": "邻居的需求", "resident": "周"},
            follow_redirects=False,
        )
        assert answer.status_code == 303


def test_overlong_or_missing_text_is_refused_and_kept(z: Zizhi, world: World) -> None:
    community = world.community()
    long_text = "长" * 2001
    with browser(z) as resident:
        csrf = csrf_of(resident.get(f"/public/{community}").text)
        answer = resident.post(
            f"/public/{community}/demands",
            data={"csrf": csrf, "content": long_text, "resident": ""},
            follow_redirects=False,
        )
        assert answer.status_code == 422
        assert "不能超过 2000 个字符" in answer.text and long_text in answer.text
        assert "Traceback" not in answer.text
        refused = resident.post(
            f"/public/{community}/demands",
            data={"content": "没有令牌", "resident": "吴"},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        missing = resident.get("/public/no-such-community", headers={"accept": "text/html"})
        assert missing.status_code == 404 and "不存在" in missing.text
    assert _pool(z, community) == []


def test_a_year_in_an_address_is_read_as_the_api_reads_it(z: Zizhi, world: World) -> None:
    """The pages take the API's one Year type: plain decimal digits within the engine's bounds,
    so a board answers at one address per year."""
    community = world.community()
    with browser(z) as resident:
        assert resident.get(f"/public/{community}?year=2025").status_code == 200
        for year in ("2025.0", "+2025", "２０２５", "1999", "2101"):
            answer = resident.get(f"/public/{community}?year={year}")
            assert answer.status_code == 422, year
            assert "text/html" in answer.headers["content-type"]


def test_the_same_intake_form_sent_twice_records_one_demand_and_counts_once(
    z: Zizhi, world: World
) -> None:
    """A resident's double click: one demand, one of the address's submissions an hour."""
    community = world.community()
    with browser(z, address=new_address()) as resident:
        board = resident.get(f"/public/{community}").text
        key = re.search(r'name="form_key" value="([^"]+)"', board)
        assert key is not None
        form = {"csrf": csrf_of(board), "form_key": key.group(1), "resident": "吴"}
        for _ in range(2):
            answer = resident.post(
                f"/public/{community}/demands",
                data={**form, "content": "楼下路灯不亮"},
                follow_redirects=False,
            )
            assert answer.status_code == 303
        assert [d.content for d in _pool(z, community)] == ["楼下路灯不亮"]
        # Another form from the same page may send the rest of the hour's submissions.
        for i in range(public_board.INTAKE_LIMIT - 1):
            answer = resident.post(
                f"/public/{community}/demands",
                data={**form, "form_key": f"other-form-{i}", "content": f"需求{i}"},
                follow_redirects=False,
            )
            assert answer.status_code == 303
    assert len(_pool(z, community)) == public_board.INTAKE_LIMIT
