"""What every resource of the fake OpenAI shares: the API's error shape and small helpers."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class _Reject(Exception):
    """Raised by lookups deep in a handler to answer with an error response (see the _auth middleware)."""

    def __init__(self, response: web.Response):
        self.response = response


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}, status=status, headers=headers
    )


# Built-in tool call items: (output item type, the middle event's name).


class Resource:
    """Helpers of the resource mixins (each mixin is one API resource of FakeOpenAI)."""

    @staticmethod
    async def _json(request: web.Request) -> dict:
        return await request.json() if request.can_read_body else {}

    @staticmethod
    def _public(record: dict) -> dict:
        return {k: v for k, v in record.items() if k != "content"}

    @staticmethod
    def _list(data: list[dict]) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    @staticmethod
    def _lookup(table: dict, key: str, what: str) -> Any:
        if key not in table:
            raise _Reject(_error(404, f"No {what} found with id '{key}'."))
        return table[key]

    @staticmethod
    async def _upload(request: web.Request) -> tuple[dict, str | None, bytes | None]:
        """Read a multipart body (SDK uploads): the plain fields, and the `file` part's name and bytes."""
        if request.content_type != "multipart/form-data":
            return (await request.json() if request.can_read_body else {}), None, None
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not isinstance(upload, web.FileField):
            return fields, None, None
        return fields, upload.filename, upload.file.read()
