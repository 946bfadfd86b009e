"""The fake's Vector Stores API: stores, their files, and indexing that takes a few polls."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from .openai_http import Resource, new_id


class VectorStores(Resource):
    files: dict[str, dict]
    vector_stores: dict[str, dict]
    vector_file_polls: int
    poll_after_ms: int
    _vector_failures: list
    _vector_polls_left: dict

    def _vector_store_routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/v1/vector_stores", self._create_vector_store)
        r.add_route("*", "/v1/vector_stores/{vsid}", self._vector_store)
        r.add_route("*", "/v1/vector_stores/{vsid}/files", self._vector_store_files)
        r.add_route("*", "/v1/vector_stores/{vsid}/files/{fid}", self._vector_store_file)

    def fail_vector_file(
        self,
        filename_or_predicate: str | Callable[[dict], bool],
        code: str = "unsupported_file",
        message: str = "The file type is not supported.",
    ) -> None:
        """Files attached to a vector store whose filename matches (or whose file object satisfies the
        predicate) end "failed" with last_error {code, message} instead of "completed"."""
        pred = filename_or_predicate
        if isinstance(pred, str):
            name = pred
            pred = lambda f: f.get("filename") == name
        self._vector_failures.append((pred, code, message))

    def _vs_json(self, store: dict) -> dict:
        files = store["files"].values()
        counts = {
            s: sum(1 for f in files if f["status"] == s) for s in ("in_progress", "completed", "failed", "cancelled")
        }
        usage = sum(f["usage_bytes"] for f in files if f["status"] == "completed")
        return {
            **store["meta"],
            "file_counts": {**counts, "total": len(store["files"])},
            "usage_bytes": usage,
            "status": "in_progress" if counts["in_progress"] else "completed",
        }

    async def _create_vector_store(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        now, expires = int(time.time()), body.get("expires_after")
        meta = {
            "id": new_id("vs"),
            "object": "vector_store",
            "created_at": now,
            "last_active_at": now,
            "name": body.get("name") or "",
            "metadata": body.get("metadata") or {},
            "expires_after": expires,
            "expires_at": now + 86400 * int(expires["days"]) if expires else None,
        }
        for file_id in body.get("file_ids") or []:
            self._lookup(self.files, file_id, "file")  # 404 before anything is created
        store = self.vector_stores[meta["id"]] = {"meta": meta, "files": {}}
        for file_id in body.get("file_ids") or []:
            self._attach(store, file_id, {})
        return web.json_response(self._vs_json(store))

    async def _vector_store(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        if request.method == "DELETE":
            del self.vector_stores[store["meta"]["id"]]
            return web.json_response({"id": store["meta"]["id"], "object": "vector_store.deleted", "deleted": True})
        if request.method == "POST":  # update name / metadata / expires_after
            store["meta"].update(
                {k: v for k, v in (await self._json(request)).items() if k in ("name", "metadata", "expires_after")}
            )
        return web.json_response(self._vs_json(store))

    def _attach(self, store: dict, file_id: str, attributes: dict) -> dict:
        record = self._lookup(self.files, file_id, "file")
        vs_id = store["meta"]["id"]
        entry = {
            "id": file_id,
            "object": "vector_store.file",
            "created_at": int(time.time()),
            "vector_store_id": vs_id,
            "status": "in_progress",
            "last_error": None,
            "usage_bytes": record["bytes"],
            "attributes": attributes or {},
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
            },
        }
        store["files"][file_id] = entry
        self._vector_polls_left[(vs_id, file_id)] = self.vector_file_polls
        self._advance(entry, record, polled=False)
        return entry

    def _advance(self, entry: dict, record: dict | None, *, polled: bool) -> None:
        """Count a poll; once the polls are used up the file ends completed, or failed if scripted so."""
        key = (entry["vector_store_id"], entry["id"])
        if entry["status"] != "in_progress" or key not in self._vector_polls_left:
            return
        left = self._vector_polls_left[key] - (1 if polled else 0)
        self._vector_polls_left[key] = left
        if left > 0:
            return
        del self._vector_polls_left[key]
        failure = next(((c, m) for pred, c, m in self._vector_failures if record is not None and pred(record)), None)
        if failure:
            entry.update(status="failed", last_error={"code": failure[0], "message": failure[1]}, usage_bytes=0)
        else:
            entry["status"] = "completed"

    def _poll_hint(self) -> dict[str, str]:
        return {"openai-poll-after-ms": str(self.poll_after_ms)}

    async def _vector_store_files(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        if request.method == "POST":
            body = await self._json(request)
            entry = self._attach(store, body.get("file_id") or "", body.get("attributes") or {})
            return web.json_response(entry, headers=self._poll_hint())
        status = request.query.get("filter")
        return self._list([f for f in store["files"].values() if status in (None, f["status"])])

    async def _vector_store_file(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        entry = self._lookup(store["files"], request.match_info["fid"], "vector store file")
        if request.method == "DELETE":
            del store["files"][entry["id"]]
            return web.json_response({"id": entry["id"], "object": "vector_store.file.deleted", "deleted": True})
        if request.method == "POST":  # update attributes
            entry["attributes"] = (await self._json(request)).get("attributes") or {}
        else:
            self._advance(entry, self.files.get(entry["id"]), polled=True)
        return web.json_response(entry, headers=self._poll_hint())

    # containers
