"""The response headers Zizhi sends and documents: the project's ETag and a new resource's
Location. The ETag is written here alone, so every answer spells it the same way."""

from __future__ import annotations

from fastapi import Response

ETAG = {
    "description": '项目的版本号（强 ETag），如 "3"；执行操作时可作 If-Match 发送',
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
}
LOCATION = {
    "description": "新建资源的地址",
    "schema": {"type": "string", "format": "uri-reference"},
}


def etag(version: int) -> str:
    """A project version as a strong entity tag: ``"3"``."""
    return f'"{version}"'


def set_etag(response: Response, version: int | None) -> None:
    """Send the project's version as the answer's ETag (nothing when there is none)."""
    if version is not None:
        response.headers["ETag"] = etag(version)
