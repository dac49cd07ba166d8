"""The annual report's pages: for street officers, auditors and admins (``/reports/{year}``,
their scope), and a district-wide public summary (``/public/reports/{year}``) that holds
counts, money and places only. Tables and server-drawn SVG charts, printable on A4."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import engine
from api.deps import SINGLE_LINE, Year
from api.handoff import page_router
from api.web import charts
from api.web.render import render
from api.web.session import Person, zizhi
from engine import AnnualReport, Role

router = page_router()
StreetName = Annotated[str | None, Query(max_length=64, pattern=SINGLE_LINE)]
SHORT_FUND = {"self_governance": "自治经费", "party_service": "为民服务经费"}


@router.get("/reports", response_class=HTMLResponse)
def last_years_report(request: Request) -> Response:
    """Last year's report: the first one with a finished year behind it."""
    year = engine.fiscal_year(zizhi(request).clock()) - 1
    return RedirectResponse(f"/reports/{year}", status_code=303)


@router.get("/public/reports", response_class=HTMLResponse)
def last_years_public_report(request: Request) -> Response:
    """Last year's public summary: what a newcomer opens first after the quick start."""
    year = engine.fiscal_year(zizhi(request).clock()) - 1
    return RedirectResponse(f"/public/reports/{year}", status_code=303)


@router.get("/reports/{year}", response_class=HTMLResponse)
def report_page(
    request: Request, person: Person, year: Year, street: StreetName = None
) -> Response:
    person.require(Role.street, Role.auditor, Role.admin)
    report = engine.annual_report(zizhi(request), person, year=year, street=street or None)
    return render(request, "report.html", _context(report, public=False))


@router.get("/public/reports/{year}", response_class=HTMLResponse)
def public_report_page(request: Request, year: Year) -> Response:
    report = engine.public_annual_report(zizhi(request), year)
    return render(request, "report.html", _context(report, public=True))


def _context(report: AnnualReport, *, public: bool) -> dict[str, Any]:
    district = report.district
    completed = [(c.name, c.projects_completed) for c in report.communities]
    in_band = sum(3 <= n <= 5 for _, n in completed)
    utilisation = [
        (f"{s.street} · {SHORT_FUND[f.fund]}", f.utilisation, charts.percent(f.utilisation))
        for s in report.streets
        for f in s.funds
        if f.allocated_fen
    ]
    steps = [
        (
            label,
            district.median_days_per_step.get(step),
            charts.days(district.median_days_per_step.get(step)),
        )
        for step, label in report.step_labels.items()
    ]
    categories = [
        (label, float(district.categories.get(cid, 0)), f"{district.categories.get(cid, 0)} 个")
        for cid, label in report.category_labels.items()
        if cid != engine.UNCLASSIFIED or district.categories.get(cid)
    ]
    mean = district.projects_completed / len(completed) if completed else None
    return {
        "report": report,
        "public": public,
        "mean_completed": mean,
        "in_band": in_band,
        "percent": charts.percent,
        "short_fund": SHORT_FUND,
        "days": charts.days,
        "charts": {
            "completed": charts.band_columns(
                f"{report.year} 年各社区办结项目数（3–5 件区间）", completed
            ),
            "utilisation": charts.hbars(
                f"{report.year} 年各街道经费使用率", utilisation, maximum=1.0
            ),
            "steps": charts.hbars(f"{report.year} 年各阶段用时中位数（天）", steps),
            "categories": charts.hbars(f"{report.year} 年项目类别分布（菜单式项目库）", categories),
        },
    }
