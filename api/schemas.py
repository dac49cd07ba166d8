"""Request bodies and the generic page. Answers are the engine's own view dataclasses.

Bodies are strict (a JSON string is never coerced to an integer, nor 1.0 to 1) and refuse
unknown fields; the engine then checks bounds and lengths once more, so the CLI and the API
refuse the same things.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from engine import COMMUNITY_ID_PATTERN, MAX_AMOUNT_FEN, DemandView, FieldSpec
from engine import DEMAND_FIELDS as DEMAND
from engine import EXPENSE_FIELDS as EXPENSE
from engine import PLACE_FIELDS as PLACE
from engine import PROJECT_FIELDS as PROJECT
from engine import SELF_MANAGEMENT_FIELDS as SELF_MANAGEMENT

T = TypeVar("T")


def text(spec: FieldSpec, description: str | None = None, **kwargs: Any) -> Any:
    """A text field the engine checks: the document states its rules (not blank, no control
    characters), the engine refuses a breach of them in its own words."""
    schema = spec.json_schema()
    return Field(
        max_length=spec.max_length,
        description=description,
        json_schema_extra={"minLength": schema["minLength"], "pattern": schema["pattern"]},
        **kwargs,
    )


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    """A field as JSON Schema, its Chinese label as the description (titles stay ASCII)."""
    schema = spec.json_schema()
    schema.pop("title", None)
    return {**schema, "description": spec.label}


def demand_location(demand: DemandView) -> str:
    return f"/api/v1/communities/{demand.community_id}/demands/{demand.id}"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class PageOut(BaseModel, Generic[T]):
    """One page, oldest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    next_cursor: str | None = Field(description="下一页的游标；没有下一页时为 null")


class CommunityIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "lihe",
                    "name": "里河社区",
                    "street": "金阊街道",
                    "district": "姑苏区",
                    "kind": "urban",
                }
            ]
        }
    )

    id: str = Field(
        max_length=64,
        description="稳定编号：小写字母、数字、_ 和 -",
        json_schema_extra={"pattern": COMMUNITY_ID_PATTERN},
    )
    name: str = text(PLACE["name"], "中文名称")
    street: str = text(PLACE["street"], "所属街道")
    district: str = text(PLACE["district"], "所属区")
    kind: Literal["urban", "rural"] = Field(description="urban 社区 / rural 村")


class AllocationIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"allocated_fen": 6_000_000}]})

    allocated_fen: int = Field(
        ge=0, le=MAX_AMOUNT_FEN, description="本年度分配额（分）；不得低于已预留与已支出之和"
    )


class ProjectIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "community_id": "lihe",
                    "workflow": "self_governance",
                    "title": "老新村消防通道“最后一公里”改善",
                    "menu_item": "C0101",
                }
            ]
        }
    )

    community_id: str = Field(max_length=64, pattern=COMMUNITY_ID_PATTERN)
    workflow: str = Field(
        max_length=64,
        pattern=r"^[a-z_]+$",
        description="self_governance 或 party_service（见 GET /api/v1/workflows）",
    )
    title: str = text(PROJECT["title"], "项目名称")
    menu_item: str | None = text(
        PROJECT["menu_item"],
        "菜单式项目库的小项编号（见 GET /api/v1/menu），如 C0101；类别与子项随之确定",
        default=None,
    )
    category: str | None = text(
        PROJECT["category"],
        "项目类别（可不填，由菜单项目确定）；"
        "只填类别时须为 特殊人群类、居民自治类、问题焦点类 之一",
        default=None,
    )


class DemandIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "content": "里河二村与三村之间的主干道堆满杂物，消防车进不来",
                    "resident": "王老伯",
                    "contact": "13800000000",
                }
            ]
        }
    )

    content: str = text(DEMAND["content"], "需求内容")
    resident: str = text(DEMAND["resident"], "居民姓名（个人信息，仅本社区居委会与审计可见）")
    contact: str | None = text(
        DEMAND["contact"], "联系方式（个人信息，仅本社区居委会与审计可见）", default=None
    )


class ExpenseIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "amount_fen": 1_250_000,
                    "payee": "苏州某物业管理有限公司",
                    "invoice_no": "32010012345678",
                    "description": "主干道杂物清运",
                }
            ]
        }
    )

    amount_fen: int = Field(ge=1, le=MAX_AMOUNT_FEN, description="金额（分），整数")
    payee: str = text(EXPENSE["payee"], "收款方")
    invoice_no: str = text(EXPENSE["invoice_no"], "发票号；同一收款方的发票只能登记一次")
    description: str = text(EXPENSE["description"], "用途说明")


class SelfManagementIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keeper": "楼道长团队",
                    "checked_on": "2026-05-01",
                    "findings": "消防通道畅通，标线清晰，无新增堆物",
                    "volunteer_team": "里河睦邻志愿服务队",
                }
            ]
        }
    )

    keeper: str = text(
        SELF_MANAGEMENT["keeper"], "谁负责日常管护：团队、岗位或单位（不填个人姓名）"
    )
    checked_on: str = text(
        SELF_MANAGEMENT["checked_on"], "检查日期，如 2026-05-01 或 2026年5月1日；不晚于今天"
    )
    findings: str = text(SELF_MANAGEMENT["findings"], "检查发现的情况")
    volunteer_team: str | None = text(
        SELF_MANAGEMENT["volunteer_team"], "参与管护的居民志愿者队伍（可选）", default=None
    )


_STREET = FieldSpec("street", "text", "街道", max_length=64, single_line=True)


class TokenIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "里河社区居委会", "role": "committee", "communities": ["lihe"]}]
        }
    )

    name: str = text(FieldSpec("name", "text", "名称", max_length=100, single_line=True))
    role: Literal["admin", "street", "committee", "auditor"]
    communities: list[Annotated[str, Field(max_length=64, pattern=COMMUNITY_ID_PATTERN)]] = Field(
        default_factory=list, max_length=1000, description="committee：可访问的社区"
    )
    streets: list[Annotated[str, text(_STREET)]] = Field(
        default_factory=list, max_length=100, description="street：可访问的街道"
    )
