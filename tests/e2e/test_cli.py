"""The command line, run as a separate process against a real database."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
import sqlalchemy as sa

import engine
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.e2e.server import cli, free_port, serve
from tests.factories import World, with_version_2


def _url(z: Zizhi) -> str:
    return z.db.url.render_as_string(hide_password=False)


def test_token_create_prints_the_token_alone_on_its_last_line(fresh_z: Zizhi) -> None:
    url = _url(fresh_z)
    made = cli(
        url,
        "community",
        "create",
        "--id",
        "lihe",
        "--name",
        "里河社区",
        "--street",
        "金阊街道",
        "--district",
        "姑苏区",
    )
    assert made.returncode == 0, made.stderr
    result = cli(
        url, "token", "create", "--role", "committee", "--name", "里河居委会", "--community", "lihe"
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("zz_") and " " not in token
    with serve(url) as (base, _):
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["communities"] == ["lihe"]


def test_token_create_refuses_a_bad_grant_with_a_clear_message(fresh_z: Zizhi) -> None:
    result = cli(_url(fresh_z), "token", "create", "--role", "committee", "--name", "无社区")
    assert result.returncode == 2
    assert "社区居委会必须指定至少一个社区" in result.stderr
    assert "zz_" not in result.stdout


def test_user_create_reads_the_password_from_stdin(fresh_z: Zizhi) -> None:
    url = _url(fresh_z)
    cli(
        url,
        "community",
        "create",
        "--id",
        "caixiang",
        "--name",
        "彩香一村三区",
        "--street",
        "金阊街道",
        "--district",
        "姑苏区",
    )
    result = cli(
        url,
        "user",
        "create",
        "--username",
        "gao",
        "--role",
        "committee",
        "--community",
        "caixiang",
        "--password-stdin",
        stdin="长长的演示口令-2026\n",
    )
    assert result.returncode == 0, result.stderr
    assert "长长的演示口令" not in result.stdout + result.stderr
    again = cli(
        url,
        "user",
        "create",
        "--username",
        "gao",
        "--role",
        "auditor",
        "--password-stdin",
        stdin="另一个长长的口令-2026\n",
    )
    assert again.returncode == 2 and "已存在" in again.stderr


def test_serve_creates_an_admin_token_once_and_applies_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    with serve(url) as (base, printed):
        token = printed[-1]
        assert token.startswith("zz_")
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
    with serve(url) as (_, printed_again):
        assert not [line for line in printed_again if line.startswith("zz_")]


def test_serve_defaults_to_a_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    with serve("sqlite:///zizhi.db", cwd=tmp_path) as (_, printed):
        assert printed[-1].startswith("zz_")
    assert (tmp_path / "zizhi.db").exists()


def test_the_quick_start_serves_a_demo_district_ready_to_sign_in(tmp_path: Path) -> None:
    """What the README's first command does, on a fresh working directory."""
    with serve("sqlite:///zizhi.db", "--demo", cwd=tmp_path) as (base, printed):
        token = printed[-1]
        assert token.startswith("zz_")
        assert any("里河社区" in line for line in printed)
        auth = {"Authorization": f"Bearer {token}"}
        communities = httpx.get(
            f"{base}/api/v1/communities", headers=auth, params={"limit": 500}
        ).json()["items"]
        assert len(communities) == 168
        # The whole three-year history (≈ 35,000 events): about 2 s of CPU, more than httpx's
        # default 5 s of wall time on a loaded machine.
        verified = httpx.get(f"{base}/api/v1/audit/verify", headers=auth, timeout=120)
        assert verified.json()["ok"] is True
        _sign_in_as_printed(base, printed)
    with serve("sqlite:///zizhi.db", "--demo", cwd=tmp_path) as (_, again):
        assert not [line for line in again if line.startswith("zz_")]  # nothing new


def test_year_close_reports_what_it_released(fresh_z: Zizhi) -> None:
    result = cli(_url(fresh_z), "year", "close", "2002")
    assert result.returncode == 0, result.stderr
    assert "2002 年度已结账" in result.stdout
    again = cli(_url(fresh_z), "year", "close", "2002")
    assert again.returncode == 2 and "已经结账" in again.stderr


def test_a_database_at_an_unknown_newer_migration_is_one_clear_sentence(fresh_z: Zizhi) -> None:
    """As a database written by a newer Zizhi looks to this one: its revision is not ours."""
    with fresh_z.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    for command in (["verify"], ["serve", "--port", str(free_port())], ["worker"]):
        result = cli(_url(fresh_z), *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert "数据库" in result.stderr and "版本" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_year_close_of_a_year_not_ended_needs_force_and_the_year_typed_twice(
    fresh_z: Zizhi,
) -> None:
    url = _url(fresh_z)
    early = cli(url, "year", "close", "2100")
    assert early.returncode == 2 and "2100 年度尚未结束" in early.stderr
    mistyped = cli(url, "year", "close", "2100", "--force", stdin="2100\n2010\n")
    assert mistyped.returncode == 2 and "不一致" in mistyped.stderr
    assert not engine.year_status(fresh_z, CLI, 2100).closed
    forced = cli(url, "year", "close", "2100", "--force", stdin="2100\n2100\n")
    assert forced.returncode == 0, forced.stderr
    assert "2100 年度已结账" in forced.stdout
    assert engine.year_status(fresh_z, CLI, 2100).closed


def test_year_reopen_undoes_a_close(fresh_z: Zizhi) -> None:
    url = _url(fresh_z)
    missing = cli(url, "year", "reopen", "2002")
    assert missing.returncode == 2 and "没有结账" in missing.stderr
    assert cli(url, "year", "close", "2002").returncode == 0
    reopened = cli(url, "year", "reopen", "2002")
    assert reopened.returncode == 0, reopened.stderr
    assert "2002 年度已撤销结账" in reopened.stdout
    assert not engine.year_status(fresh_z, CLI, 2002).closed


def _sign_in_as_printed(base: str, printed: list[str]) -> None:
    """The web users the quick start prints sign in on /login with the printed password."""
    text = "\n".join(printed)
    password = re.search(r"密码均为：(\S+)", text)
    officer = re.search(r"街道工作人员\s+([A-Za-z0-9_.@-]+)（", text)
    committee = re.search(r"如 ([a-z0-9_-]+)（里河社区）", text)
    assert password and officer and committee, text
    for username, lands_on, shows in (
        (committee.group(1), "/", "里河社区"),
        (officer.group(1), "/street", "待街道审核"),
        ("auditor", "/audit", "历史记录查询"),
        ("admin", "/street", "选择街道"),
    ):
        with httpx.Client(base_url=base) as browser:
            login = browser.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert csrf
            answer = browser.post(
                "/login",
                data={
                    "csrf": csrf.group(1),
                    "username": username,
                    "password": password.group(1),
                    "next": "/",
                },
            )
            page = browser.get("/", follow_redirects=True)
            assert answer.status_code == 303, (username, answer.text[:300])
            assert page.url.path == lands_on and shows in page.text, username


def test_a_removed_definition_that_projects_run_on_stops_the_server_not_verify(
    fresh_z: Zizhi,
) -> None:
    """A project opened under a definition version this install does not have (its file
    removed): the server refuses to start, saying which; verify still checks the history."""
    v2 = Zizhi(fresh_z.db, with_version_2())
    world = World(v2)
    world.project(world.community())  # new projects start on the latest version: 2
    for command in (["serve", "--port", str(free_port())], ["worker"]):
        result = cli(_url(fresh_z), *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "self_governance 第 2 版" in result.stderr and "Traceback" not in result.stderr
    verified = cli(_url(fresh_z), "verify")
    assert verified.returncode == 0, verified.stderr
    assert engine.definitions_missing(fresh_z) == [("self_governance", 2)]
    assert engine.definitions_missing(v2) == []
