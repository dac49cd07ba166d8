"""``zizhi demo`` builds years behind the current one: finished and closed, 3–5 matters
settled per community, within the caps, on the menu library; the same seed, the same
district and the same reports."""

from __future__ import annotations

import pytest

import engine
from demo.district import DEFAULT_YEARS, DemoResult, generate
from engine import CLI, Zizhi
from engine.rules.workflow import WorkflowRegistry
from tests.conftest import DatabaseFactory
from tests.reports.test_annual_report import expected, reported

SIZE, SEED = 8, 11


@pytest.fixture(scope="module")
def built(
    backend: str, databases: DatabaseFactory, registry: WorkflowRegistry
) -> tuple[Zizhi, DemoResult]:
    z = Zizhi(databases.new(backend), registry)
    return z, generate(z, communities=SIZE, seed=SEED)


def test_by_default_two_finished_years_precede_this_one(built: tuple[Zizhi, DemoResult]) -> None:
    z, demo = built
    assert DEFAULT_YEARS == 3 and len(demo.years) == 3
    this_year = engine.fiscal_year(z.clock())
    assert demo.years == [this_year - 2, this_year - 1, this_year]
    for year in demo.years[:-1]:
        assert engine.year_status(z, CLI, year).closed, year
    assert not engine.year_status(z, CLI, this_year).closed


def test_finished_years_settle_three_to_five_matters_per_community(
    built: tuple[Zizhi, DemoResult],
) -> None:
    z, demo = built
    for year in demo.years[:-1]:
        report = engine.annual_report(z, CLI, year=year)
        assert len(report.communities) == SIZE
        completed = [c.projects_completed for c in report.communities]
        assert 3 <= sum(completed) / len(completed) <= 5, (year, completed)
        assert all(3 <= n <= 5 for n in completed), (year, completed)
        assert report.district.projects_open == 0
        assert report.district.projects_rejected + report.district.projects_cancelled > 0
        assert 0 < report.district.projects_self_managed <= report.district.projects_completed
        for c in report.communities:
            for fund in c.funds:
                assert fund.reserved_fen == 0  # closed: nothing is held any more
                assert fund.spent_fen <= fund.allocated_fen
        utilisation = {f.fund: f.utilisation for f in report.district.funds}
        assert 0.5 <= (utilisation["self_governance"] or 0) <= 1.0, utilisation


def test_every_figure_of_a_finished_year_is_what_the_history_says(
    built: tuple[Zizhi, DemoResult],
) -> None:
    """On the demo's past years, whose steps took days, not the milliseconds of a test."""
    z, demo = built
    for year in demo.years[:-1]:
        report = engine.annual_report(z, CLI, year=year)
        ids = [c.community_id for c in report.communities]
        for c in report.communities:
            assert reported(c) == expected(z, [c.community_id], year), (year, c.community_id)
        for s in report.streets:
            members = [c.community_id for c in report.communities if c.street == s.street]
            assert reported(s) == expected(z, members, year), (year, s.street)
        assert reported(report.district) == expected(z, ids, year), year
        district = report.district
        assert (district.median_days_to_complete or 0) > 1, year
        assert set(district.median_days_per_step) >= {"demand_collection", "implementation"}
        assert district.mean_evaluation_score is not None and district.satisfaction is not None


def test_this_year_is_under_way_and_every_project_names_a_menu_item(
    built: tuple[Zizhi, DemoResult],
) -> None:
    z, demo = built
    now = engine.annual_report(z, CLI, year=demo.years[-1])
    assert now.district.projects_open > 0 and now.district.projects_completed > 0
    projects = engine.every(lambda c: engine.list_projects(z, CLI, limit=500, cursor=c))
    assert projects and all(p.menu_item in z.workflows.menu.items for p in projects)
    assert set(now.district.categories) <= {c.id for c in z.workflows.menu.categories}


def test_the_same_seed_gives_the_same_reports(
    built: tuple[Zizhi, DemoResult], fresh_z: Zizhi
) -> None:
    z, demo = built
    again = generate(fresh_z, communities=SIZE, seed=SEED)
    assert again.projects == demo.projects
    for year in demo.years[:-1]:  # this year's moments depend on today's date
        assert engine.annual_report(fresh_z, CLI, year=year) == engine.annual_report(
            z, CLI, year=year
        )
    last = demo.years[-1]
    mine, theirs = (engine.annual_report(x, CLI, year=last).district for x in (z, fresh_z))
    assert (mine.projects_opened, mine.projects_completed, mine.funds) == (
        theirs.projects_opened,
        theirs.projects_completed,
        theirs.funds,
    )
