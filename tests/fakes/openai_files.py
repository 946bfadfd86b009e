"""The fake's Files API: /v1/files, uploads and their content."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from .openai_http import Resource, _error


class Files(Resource):
    files: dict[str, dict]
    vector_stores: dict[str, dict]
    # (status, message) the next uploads are refused with, one entry per upload.
    upload_errors: list[tuple[int, str]]

    def _file_routes(self, r: web.UrlDispatcher) -> None:
        r.add_route("*", "/v1/files", self._files_root)
        r.add_route("*", "/v1/files/{fid}", self._file)
        r.add_get("/v1/files/{fid}/content", self._file_content)

    async def _files_root(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            purpose = request.query.get("purpose")
            return self._list([self._public(f) for f in self.files.values() if purpose in (None, f["purpose"])])
        fields, name, content = await self._upload(request)
        if self.upload_errors:
            status, message = self.upload_errors.pop(0)
            return _error(status, message, "invalid_request_error" if status < 500 else "server_error")
        if content is None or not fields.get("purpose"):
            return _error(
                400, "Both 'file' and 'purpose' are required.", param="file" if content is None else "purpose"
            )
        record = {
            "id": f"file-{secrets.token_hex(11)}",
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name or "upload",
            "purpose": fields["purpose"],
            "status": "processed",
            "expires_at": None,
            "status_details": None,
            "content": content,
        }
        if fields.get("expires_after[seconds]"):  # the SDK sends expires_after as form fields
            record["expires_at"] = record["created_at"] + int(fields["expires_after[seconds]"])
        self.files[record["id"]] = record
        return web.json_response(self._public(record))

    async def _file(self, request: web.Request) -> web.Response:
        record = self._lookup(self.files, request.match_info["fid"], "file")
        if request.method == "DELETE":
            del self.files[record["id"]]
            for store in self.vector_stores.values():  # deleting a file also removes it from vector stores
                store["files"].pop(record["id"], None)
            return web.json_response({"id": record["id"], "object": "file", "deleted": True})
        return web.json_response(self._public(record))

    async def _file_content(self, request: web.Request) -> web.Response:
        record = self._lookup(self.files, request.match_info["fid"], "file")
        return web.Response(body=record["content"], content_type="application/octet-stream")

    # vector stores
