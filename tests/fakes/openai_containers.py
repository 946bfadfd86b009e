"""The fake's Containers API (the code interpreter's sandboxes) and their files."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from .openai_http import Resource, new_id


class Containers(Resource):
    files: dict[str, dict]
    containers: dict[str, dict]

    def _container_routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/v1/containers", self._create_container)
        r.add_route("*", "/v1/containers/{cid}", self._container)
        r.add_route("*", "/v1/containers/{cid}/files", self._container_files)
        r.add_route("*", "/v1/containers/{cid}/files/{fid}", self._container_file)
        r.add_get("/v1/containers/{cid}/files/{fid}/content", self._container_file_content)

    def add_container_file(self, container_id: str, name: str, content: bytes, file_id: str | None = None) -> str:
        """Simulate code interpreter writing /mnt/data/<name>; creates the container if unknown. Returns the
        container file id (cfile_…; `file_id` to match one a recorded stream cites)."""
        if container_id not in self.containers:
            self.containers[container_id] = {"meta": self._container_meta(container_id, "fake-container"), "files": {}}
        return self._put_container_file(container_id, name, content, "assistant", file_id)["id"]

    @staticmethod
    def _container_meta(cid: str, name: str, expires_after: dict | None = None) -> dict:
        now = int(time.time())
        return {
            "id": cid,
            "object": "container",
            "created_at": now,
            "last_active_at": now,
            "name": name,
            "status": "running",
            "memory_limit": "1g",
            "expires_after": expires_after or {"anchor": "last_active_at", "minutes": 20},
        }

    def _put_container_file(self, cid: str, name: str, content: bytes, source: str, file_id: str | None = None) -> dict:
        record = {
            "id": file_id or f"cfile_{secrets.token_hex(12)}",
            "object": "container.file",
            "container_id": cid,
            "created_at": int(time.time()),
            "bytes": len(content),
            "path": f"/mnt/data/{name}",
            "source": source,
            "content": content,
        }
        self.containers[cid]["files"][record["id"]] = record
        return record

    async def _create_container(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        copies = [self._lookup(self.files, fid, "file") for fid in body.get("file_ids") or []]
        meta = self._container_meta(new_id("cntr"), body.get("name") or "", body.get("expires_after"))
        if body.get("memory_limit"):
            meta["memory_limit"] = body["memory_limit"]
        self.containers[meta["id"]] = {"meta": meta, "files": {}}
        for record in copies:
            self._put_container_file(meta["id"], record["filename"], record["content"], "user")
        return web.json_response(meta)

    async def _container(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        if request.method == "DELETE":
            del self.containers[container["meta"]["id"]]
            return web.json_response({"id": container["meta"]["id"], "object": "container.deleted", "deleted": True})
        return web.json_response(container["meta"])

    async def _container_files(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        cid = container["meta"]["id"]
        if request.method == "GET":
            return self._list([self._public(f) for f in container["files"].values()])
        fields, name, content = await self._upload(request)
        if content is None:  # JSON {file_id}: copy an uploaded file in
            record = self._lookup(self.files, fields.get("file_id") or "", "file")
            name, content = record["filename"], record["content"]
        return web.json_response(self._public(self._put_container_file(cid, name or "upload", content, "user")))

    async def _container_file(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        record = self._lookup(container["files"], request.match_info["fid"], "container file")
        if request.method == "DELETE":
            del container["files"][record["id"]]
            return web.Response(status=200)
        return web.json_response(self._public(record))

    async def _container_file_content(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        record = self._lookup(container["files"], request.match_info["fid"], "container file")
        return web.Response(body=record["content"], content_type="application/octet-stream")
