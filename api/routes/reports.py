"""The annual report: JSON, and the same table as CSV (Excel-safe) and XLSX, Chinese headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import Query
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

import engine
from api.deps import (
    SINGLE_LINE,
    CommunityFilter,
    CurrentPrincipal,
    NameFilter,
    YearQuery,
    ZizhiDep,
)
from api.handoff import Router
from api.problems import responses
from engine import AnnualReport, Figures

router = Router(prefix="/api/v1/reports", tags=["reports"])

DistrictFilter = Annotated[
    str | None,
    Query(max_length=64, pattern=SINGLE_LINE, description="区（名称，全角半角与空格不计）"),
]
REFUSALS = responses("unauthenticated", "not_found", "validation_error")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A text cell starting with one of these is read by spreadsheets as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")

Cell = str | int | float | None


def _report(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    year: YearQuery,
    district: DistrictFilter = None,
    street: NameFilter = None,
    community_id: CommunityFilter = None,
) -> AnnualReport:
    return engine.annual_report(
        z, principal, year=year, district=district, street=street, community_id=community_id
    )


@router.get(
    "/annual",
    response_model=AnnualReport,
    summary="年度报表：各社区、街道与全区的项目、需求、经费与满意度",
    description=(
        "所有数字均由历史事件与账本计算：新建、办结、不予立项、撤销、在办项目数；"
        "受理与办结的居民需求；各项经费的分配、预留、支出与使用率；开办至办结及各阶段用时中位数（天）；"
        "评估平均分；居民满意率 = 满意 /（满意 + 不满意）；自治管理中的项目；菜单式项目库大类分布。"
        "范围与其他查询相同；未知社区为 not_found，无数据的年度各项为零。"
    ),
    responses=REFUSALS,
)
def get_annual_report(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    year: YearQuery,
    district: DistrictFilter = None,
    street: NameFilter = None,
    community_id: CommunityFilter = None,
) -> AnnualReport:
    return _report(z, principal, year, district, street, community_id)


@router.get(
    "/annual.csv",
    summary="年度报表 CSV（UTF-8 带 BOM，Excel 可直接打开）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **REFUSALS},
)
def export_annual_csv(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    year: YearQuery,
    district: DistrictFilter = None,
    street: NameFilter = None,
    community_id: CommunityFilter = None,
) -> Response:
    report = _report(z, principal, year, district, street, community_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in table(report):
        writer.writerow(
            ["" if c is None else safe_text(c) if isinstance(c, str) else c for c in row]
        )
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"annual-{year}.csv", f"{year}年度报表.csv"),
    )


@router.get(
    "/annual.xlsx",
    summary="年度报表 XLSX",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}, **REFUSALS},
)
def export_annual_xlsx(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    year: YearQuery,
    district: DistrictFilter = None,
    street: NameFilter = None,
    community_id: CommunityFilter = None,
) -> Response:
    report = _report(z, principal, year, district, street, community_id)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"{year}年度报表"
    for r, row in enumerate(table(report), start=1):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            if r == 1:
                cell.font = Font(bold=True)
    sheet.freeze_panes = "D2"
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        media_type=XLSX,
        headers=_attachment(f"annual-{year}.xlsx", f"{year}年度报表.xlsx"),
    )


# --- the table both exports share ------------------------------------------------------------

COUNTS = [
    ("projects_opened", "新建项目"),
    ("projects_completed", "办结"),
    ("projects_rejected", "不予立项"),
    ("projects_cancelled", "撤销"),
    ("projects_open", "在办"),
    ("projects_self_managed", "自治管理中"),
    ("demands_received", "受理需求"),
    ("demands_settled", "办结需求"),
]


def headers(report: AnnualReport) -> list[str]:
    funds = [
        f"{label}{what}"
        for label in report.fund_labels.values()
        for what in ("分配（元）", "预留（元）", "支出（元）", "使用率")
    ]
    return [
        "层级",
        "社区编号",
        "社区",
        "街道",
        *(label for _, label in COUNTS),
        *funds,
        "开办至办结天数（中位数）",
        *(f"{label}天数（中位数）" for label in report.step_labels.values()),
        "评估平均分",
        "满意户数",
        "不满意户数",
        "满意率",
        *(f"{label}项目" for label in report.category_labels.values()),
    ]


def _figures(report: AnnualReport, figures: Figures) -> list[Cell]:
    money: list[Cell] = []
    for fund in figures.funds:
        money += [
            fund.allocated_fen / 100,
            fund.reserved_fen / 100,
            fund.spent_fen / 100,
            fund.utilisation,
        ]
    return [
        *(getattr(figures, name) for name, _ in COUNTS),
        *money,
        figures.median_days_to_complete,
        *(figures.median_days_per_step.get(step) for step in report.step_labels),
        figures.mean_evaluation_score,
        figures.satisfied,
        figures.unsatisfied,
        figures.satisfaction,
        *(figures.categories.get(c, 0) for c in report.category_labels),
    ]


def table(report: AnnualReport) -> list[Sequence[Cell]]:
    """Header, one row per community, one per street, and the district's totals."""
    rows: list[Sequence[Cell]] = [headers(report)]
    for c in report.communities:
        rows.append(["社区", c.community_id, c.name, c.street, *_figures(report, c)])
    for s in report.streets:
        rows.append(["街道合计", None, None, s.street, *_figures(report, s)])
    rows.append(["全区合计", None, None, None, *_figures(report, report.district)])
    return rows


def safe_text(value: str) -> str:
    """A text a spreadsheet will show as text, not run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _attachment(ascii_name: str, name: str) -> dict[str, str]:
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return {"Content-Disposition": disposition}


def _csv_cell(value: Cell) -> Cell:
    if value is None:
        return ""
    return safe_text(value) if isinstance(value, str) else value
