"""The menu project library: data with stable ids, what a project names, and old projects
whose category was free text (migration 0006)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import engine
from engine import CLI, ValidationFailed
from engine.rules.workflow import WorkflowRegistry
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World, secret
from workflows import DEFINITIONS_DIR, latest_menu

MIGRATIONS = Path(engine.__file__).parent / "migrations"


def test_the_library_has_the_sources_counts_with_unique_ids() -> None:
    menu = latest_menu(DEFINITIONS_DIR)
    assert menu is not None
    assert [c.label for c in menu.categories] == ["特殊人群类", "居民自治类", "问题焦点类"]
    subs = [s for c in menu.categories for s in c.sub_items]
    items = [i for s in subs for i in s.items]
    assert (len(subs), len(items)) == (21, 85)
    ids = [c.id for c in menu.categories] + [s.id for s in subs] + [i.id for i in items]
    assert len(ids) == len(set(ids))
    assert all(i.label and i.category_label and i.sub_item_label for i in items)


@pytest.mark.parametrize(
    "typed", ["C0101", "ｃ０１０１", "\u3000C0101 ", "C0101\u200b", "老新村消防通道清障"]
)
def test_a_project_names_its_item_as_people_type_it(world: World, typed: str) -> None:
    community = world.community()
    project = engine.open_project(
        world.z,
        world.committee(community),
        community_id=community,
        workflow="self_governance",
        title="消防通道",
        menu_item=typed,
    )
    assert (project.menu_item, project.category) == ("C0101", "问题焦点类")
    created = engine.project_history(world.z, CLI, project.id)[0]
    assert created.data["menu_item"] == "C0101"


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"menu_item": "Z9999"}, "menu_item"),
        ({"menu_item": "C01"}, "menu_item"),  # a sub-item is not an item
        ({"category": "随便写"}, "category"),
        ({}, "menu_item"),
        ({"menu_item": "C0101", "category": "特殊人群类"}, "category"),
    ],
)
def test_unknown_items_and_free_text_categories_are_refused(
    world: World, given: dict[str, str], field: str
) -> None:
    community = world.community()
    with pytest.raises(ValidationFailed) as refused:
        engine.open_project(
            world.z,
            world.committee(community),
            community_id=community,
            workflow="self_governance",
            title="随便",
            menu_item=given.get("menu_item"),
            category=given.get("category"),
        )
    assert field in refused.value.errors
    assert engine.list_projects(world.z, CLI, community_id=community).items == []


def test_the_api_serves_the_library_and_refuses_unknown_items(world: World) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    z = world.z
    community = world.community()
    token = engine.create_token(z, CLI, name="居委会", role="committee", communities=[community])
    client = TestClient(create_app(z), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {secret(token)}"}
    served = client.get("/api/v1/menu", headers=auth)
    assert served.status_code == 200, served.text
    categories = served.json()["categories"]
    assert [c["label"] for c in categories] == ["特殊人群类", "居民自治类", "问题焦点类"]
    subs = [s for c in categories for s in c["sub_items"]]
    items = {i["id"]: i["label"] for s in subs for i in s["items"]}
    assert (len(subs), len(items)) == (21, 85)
    assert items == {i.id: i.label for i in z.workflows.menu.items.values()}
    assert client.get("/api/v1/menu").status_code == 401
    for given, field in (
        ({"menu_item": "Z9999"}, "menu_item"),
        ({"menu_item": "C01"}, "menu_item"),
        ({"category": "随便写"}, "category"),
    ):
        refused = client.post(
            "/api/v1/projects",
            headers=auth,
            json={"community_id": community, "workflow": "self_governance", "title": "随便"}
            | given,
        )
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "validation_error" and field in problem["errors"], problem
    assert engine.list_projects(z, CLI, community_id=community).items == []


def test_a_category_alone_is_still_taken_from_older_clients(world: World) -> None:
    community = world.community()
    project = engine.open_project(
        world.z,
        world.committee(community),
        community_id=community,
        workflow="self_governance",
        title="楼道",
        category="\u3000居民自治类 ",
    )
    assert (project.menu_item, project.category) == (None, "居民自治类")


def test_old_free_text_projects_keep_working_after_migration(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> None:
    url = databases.url(backend)
    db = engine.Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        conn.commit()
    at = datetime(2025, 5, 1, tzinfo=UTC)
    with db.write() as conn:  # what the previous version stored, written by hand
        conn.execute(
            sa.text(
                "INSERT INTO communities (id, name, street, district, street_key, district_key,"
                " kind, created_at) VALUES ('oldc', '老社区', '老街道', '姑苏区', '老街道',"
                " '姑苏区', 'urban', :at)"
            ),
            {"at": at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO projects (id, community_id, workflow, workflow_version, fund, year,"
                " title, category, state, version, budget_fen, reserved_fen, spent_fen, details,"
                " created_at, updated_at) VALUES (1, 'oldc', 'self_governance', 1,"
                " 'self_governance', 2025, '老项目', '随便写', 'completed', 9, 100, 0, 100, '{}',"
                " :at, :at)"
            ),
            {"at": at},
        )
        created = {
            "workflow": "self_governance",
            "workflow_version": 1,
            "fund": "self_governance",
            "year": 2025,
            "state": "demand_collection",
            "title": "老项目",
            "category": "随便写",
        }
        conn.execute(
            sa.text(
                "INSERT INTO events (chain, seq, at, actor, role, community_id, project_id,"
                " type, data, prev_hash, hash) VALUES ('oldc', 1, :at, 'cli', 'admin', 'oldc',"
                " 1, 'project.created', :data, :h, :h)"
            ),
            {"at": at, "data": engine.canonical_json(created), "h": "0" * 64},
        )
        conn.commit()
    db.migrate()
    z = Zizhi(db, registry)
    project = engine.get_project(z, CLI, 1)
    assert (project.category, project.menu_item, project.state) == ("随便写", None, "completed")
    report = engine.annual_report(z, CLI, year=2025)
    assert report.district.categories == {"unclassified": 1}
    assert report.district.projects_opened == 1
    db.dispose()
