"""GET /v1/models and /v1/models/{id} for the fake OpenAI: the Model objects `assist-bot check`
reads (openai.types.Model: id, object, created, owned_by, shutdown_date as "YYYY-MM-DD" or null)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

# OpenAI's deprecations page: gpt-5, gpt-5-mini and gpt-5-nano shut down on 2026-12-11.
DEFAULT_MODELS: dict[str, str | None] = {
    "gpt-5.4": None,
    "gpt-5.4-mini": None,
    "gpt-5.4-nano": "2027-04-01",
    "gpt-5": "2026-12-11",
    "gpt-5-mini": "2026-12-11",
    "gpt-5-nano": "2026-12-11",
}


def model_object(model_id: str, shutdown_date: str | None) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "system",
        "shutdown_date": shutdown_date,
    }


class ModelRoutes:
    """`models` maps a model id to its shutdown date (None: none announced); tests edit it."""

    def __init__(self) -> None:
        self.models: dict[str, str | None] = dict(DEFAULT_MODELS)

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/models", self._list)
        router.add_get("/v1/models/{model}", self._retrieve)

    async def _list(self, _request: web.Request) -> web.Response:
        data = [model_object(m, d) for m, d in self.models.items()]
        return web.json_response({"object": "list", "data": data})

    async def _retrieve(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model"]
        if model_id not in self.models:
            error = {
                "message": f"The model '{model_id}' does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
            return web.json_response({"error": error}, status=404)
        return web.json_response(model_object(model_id, self.models[model_id]))
