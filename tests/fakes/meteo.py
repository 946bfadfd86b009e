"""A fake Open-Meteo (geocoding + forecast) on 127.0.0.1, recording the queries it gets.
Knows Paris; any other city is not found; "Broken" gets Open-Meteo's 400."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer


class FakeOpenMeteo:
    def __init__(self) -> None:
        self.geocoding: list[dict[str, str]] = []
        self.forecast: list[dict[str, str]] = []
        app = web.Application()
        app.router.add_get("/v1/search", self._search)
        app.router.add_get("/v1/forecast", self._forecast)
        self.server = TestServer(app, host="127.0.0.1")

    async def _search(self, request: web.Request) -> web.Response:
        self.geocoding.append(dict(request.query))
        if request.query["name"] == "Broken":
            return web.json_response({"error": True, "reason": "Parameter count out of range"}, status=400)
        if request.query["name"] != "Paris":
            return web.json_response({"generationtime_ms": 0.2})  # what Open-Meteo sends for no match
        return web.json_response(
            {
                "results": [
                    {"name": "Paris", "country": "France", "latitude": 48.85341, "longitude": 2.3488},
                ]
            }
        )

    async def _forecast(self, request: web.Request) -> web.Response:
        self.forecast.append(dict(request.query))
        fahrenheit = request.query["temperature_unit"] == "fahrenheit"
        return web.json_response(
            {
                "current": {
                    "time": "2026-05-09T14:00",
                    "temperature_2m": 68.4 if fahrenheit else 20.2,
                    "apparent_temperature": 66.9 if fahrenheit else 19.4,
                    "relative_humidity_2m": 55,
                    "wind_speed_10m": 11.3,
                    "weather_code": 2,
                }
            }
        )

    @property
    def geocoding_url(self) -> str:
        return str(self.server.make_url("/v1/search"))

    @property
    def forecast_url(self) -> str:
        return str(self.server.make_url("/v1/forecast"))
