"""The auditors' view: filtered events, CSV and JSON Lines exports, chain verification."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse
from openpyxl import Workbook

import engine
from api.deps import (
    DIGITS,
    MAX_ID,
    SINGLE_LINE,
    CommunityFilter,
    CurrentPrincipal,
    Cursor,
    Limit,
    Moment,
    NameFilter,
    ZizhiDep,
)
from api.handoff import Router
from api.problems import responses
from api.schemas import PageOut
from engine import (
    AccessView,
    CheckpointView,
    ConsistencyProof,
    EventFilter,
    EventView,
    InclusionProof,
    PublicKeyView,
    TreeReport,
    VerifyReport,
)

router = Router(prefix="/api/v1/audit", tags=["audit"])

CSV_COLUMNS = [
    "id",
    "at",
    "chain",
    "seq",
    "type",
    "actor",
    "role",
    "community_id",
    "project_id",
    "data",
    "prev_hash",
    "hash",
]
# The spreadsheet's headers, for people (the columns of the CSV, in the same order).
XLSX_HEADERS = [
    "事件编号",
    "时间（UTC）",
    "历史链",
    "链上序号",
    "事件类型",
    "操作者",
    "角色",
    "社区",
    "项目",
    "数据",
    "前一事件哈希",
    "事件哈希",
]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def event_filter(
    community_id: CommunityFilter = None,
    street: NameFilter = None,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID), DIGITS] = None,
    actor: Annotated[
        str | None, Query(max_length=128, pattern=SINGLE_LINE, examples=["token:3f9a1c2b4d5e"])
    ] = None,
    type: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=SINGLE_LINE,
            description="事件类型，或如 ledger.* 的前缀",
            examples=["project.transitioned"],
        ),
    ] = None,
    since: Annotated[Moment | None, Query(description="起始时刻（含），须带时区")] = None,
    until: Annotated[Moment | None, Query(description="截止时刻（不含），须带时区")] = None,
) -> EventFilter:
    return EventFilter(
        community_id=community_id,
        street=street,
        project_id=project_id,
        actor=actor,
        type=type,
        since=since,
        until=until,
    )


Filter = Annotated[EventFilter, Depends(event_filter)]


@router.get(
    "/events",
    response_model=PageOut[EventView],
    summary="查询历史事件（由旧到新）",
    responses=responses("unauthenticated", "forbidden", "validation_error"),
)
def list_events(
    where: Filter,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> object:
    return engine.query_events(z, principal, where, limit=limit, cursor=cursor)


@router.get(
    "/events.csv",
    summary="导出历史事件 CSV（UTF-8 带 BOM，Excel 可直接打开）",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}},
        **responses("unauthenticated", "forbidden", "validation_error"),
    },
)
def export_events_csv(where: Filter, z: ZizhiDep, principal: CurrentPrincipal) -> StreamingResponse:
    events = engine.stream_events(z, principal, where)
    return StreamingResponse(
        _csv(events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


@router.get(
    "/events.jsonl",
    summary="导出历史事件 JSON Lines",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/jsonl": {}}},
        **responses("unauthenticated", "forbidden", "validation_error"),
    },
)
def export_events_jsonl(
    where: Filter, z: ZizhiDep, principal: CurrentPrincipal
) -> StreamingResponse:
    events = engine.stream_events(z, principal, where)
    return StreamingResponse(
        (_json_line(e) for e in events),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="events.jsonl"'},
    )


@router.get(
    "/events.xlsx",
    summary="导出历史事件 Excel（XLSX，中文表头）",
    response_class=StreamingResponse,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}}},
        **responses("unauthenticated", "forbidden", "validation_error"),
    },
)
def export_events_xlsx(
    where: Filter, z: ZizhiDep, principal: CurrentPrincipal
) -> StreamingResponse:
    events = engine.stream_events(z, principal, where)
    return StreamingResponse(
        xlsx(events),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="events.xlsx"'},
    )


@router.get(
    "/access-log",
    response_model=PageOut[AccessView],
    summary="查阅记录：审计人员和街道对历史、对账单和导出的每次查询（管理员、审计人员）",
    responses=responses("unauthenticated", "forbidden", "validation_error"),
)
def list_access_log(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    actor: Annotated[
        str | None, Query(max_length=128, pattern=SINGLE_LINE, examples=["token:3f9a1c2b4d5e"])
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> object:
    return engine.access_records(z, principal, actor=actor, limit=limit, cursor=cursor)


@router.get(
    "/verify",
    response_model=VerifyReport,
    summary="校验整条历史链与账本",
    responses=responses("unauthenticated", "forbidden"),
)
def verify_history(z: ZizhiDep, principal: CurrentPrincipal) -> VerifyReport:
    return engine.verify(z, principal)


@router.get(
    "/verify-tree",
    response_model=TreeReport,
    summary="校验默克尔树：由事件重算证明所用的节点、叶子位置与按时间筛选所用的时间块",
    description=(
        "返回 `{ok, leaves, first_bad?}`；`first_bad` 为第一处与事件不符、缺少或多出的行"
        "（`table`、`row`、`reason`）。树覆盖全区的历史，只有不限范围的审计员或管理员可以校验。"
    ),
    responses=responses("unauthenticated", "forbidden"),
)
def verify_merkle_tree(z: ZizhiDep, principal: CurrentPrincipal) -> TreeReport:
    return engine.verify_tree(z, principal)


@router.get(
    "/public-key",
    response_model=PublicKeyView,
    summary="服务器签名公钥（Ed25519，用于核对检查点签名）",
    description="任何人均可读取，无需令牌。key_id 为原始 32 字节公钥的 SHA-256。",
)
def get_public_key(z: ZizhiDep) -> PublicKeyView:
    return engine.public_key(z)


@router.get(
    "/checkpoint",
    response_model=CheckpointView,
    summary="已签名的历史检查点（树的大小、默克尔根、时间）",
    description=(
        "任何人均可读取，无需令牌。默克尔树按 RFC 9162 构造，叶子依次为按事件流顺序排列的"
        "事件哈希；签名为 Ed25519，签名内容为四行 UTF-8 文本：zizhi-checkpoint/1、树的大小、"
        "根哈希、时间，各以换行结尾。保存此 JSON，日后可用 `zizhi verify --checkpoint` 核对。"
    ),
)
def get_checkpoint(z: ZizhiDep) -> CheckpointView:
    return engine.checkpoint(z)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProof,
    summary="某事件在检查点中的包含证明（RFC 9162 审计路径）",
    responses=responses("unauthenticated", "forbidden", "not_found", "validation_error"),
)
def get_inclusion_proof(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    event_id: Annotated[int, Query(ge=1, le=MAX_ID, description="事件编号"), DIGITS],
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="树的大小，默认为当前检查点"), DIGITS
    ] = None,
) -> InclusionProof:
    return engine.inclusion_proof(z, principal, event_id, tree_size)


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProof,
    summary="两个树大小之间的一致性证明（RFC 9162）",
    responses=responses("unauthenticated", "forbidden", "validation_error"),
)
def get_consistency_proof(
    z: ZizhiDep,
    principal: CurrentPrincipal,
    first: Annotated[int, Query(ge=1, le=MAX_ID, description="较早的树大小"), DIGITS],
    second: Annotated[int, Query(ge=1, le=MAX_ID, description="较晚的树大小"), DIGITS],
) -> ConsistencyProof:
    return engine.consistency_proof(z, principal, first, second)


def _record(event: EventView) -> dict[str, object]:
    record = asdict(event)
    # Exactly the text the hash covers (microseconds always written, UTC offset +00:00), so
    # a verifier hashing the exported value never trips on an event at a whole second.
    record["at"] = engine.history_time(event.at)
    return record


def _json_line(event: EventView) -> bytes:
    return (json.dumps(_record(event), ensure_ascii=False) + "\n").encode()


def _csv(events: Iterator[EventView]) -> Iterator[bytes]:
    yield "\ufeff".encode()  # BOM: Excel then reads the file as UTF-8
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(["" if value is None else value for value in _row(event)])
        if buffer.tell() > 64_000:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _row(event: EventView) -> list[object]:
    """One event as the export's columns: ``at`` and ``data`` exactly as hashed."""
    record = _record(event)
    record["data"] = engine.canonical_json(event.data)
    return [record[c] for c in CSV_COLUMNS]


def xlsx(events: Iterator[EventView]) -> Iterator[bytes]:
    """An XLSX workbook of the events, written by openpyxl in write-only mode: rows go to a
    temporary file as they are read, so memory stays flat however long the history."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("历史事件")
    sheet.append(XLSX_HEADERS)
    for event in events:
        sheet.append(_row(event))
    with tempfile.TemporaryFile() as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(64 * 1024):
            yield chunk
