"""get_weather against a fake Open-Meteo (geocoding + forecast) on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from assist_bot.tools import ToolResult
from assist_bot.tools.builtin.weather import get_weather
from tests.tools.conftest import free_port

pytestmark = pytest.mark.timeout(10)


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
        return web.json_response({"results": [
            {"name": "Paris", "country": "France", "latitude": 48.85341, "longitude": 2.3488},
        ]})

    async def _forecast(self, request: web.Request) -> web.Response:
        self.forecast.append(dict(request.query))
        fahrenheit = request.query["temperature_unit"] == "fahrenheit"
        return web.json_response({"current": {
            "time": "2026-05-09T14:00",
            "temperature_2m": 68.4 if fahrenheit else 20.2,
            "apparent_temperature": 66.9 if fahrenheit else 19.4,
            "relative_humidity_2m": 55,
            "wind_speed_10m": 11.3,
            "weather_code": 2,
        }})


@pytest.fixture
async def meteo():
    fake = FakeOpenMeteo()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
def ctx(meteo, make_ctx, make_settings):
    return make_ctx(make_settings(
        OPEN_METEO_GEOCODING_URL=str(meteo.server.make_url("/v1/search")),
        OPEN_METEO_FORECAST_URL=str(meteo.server.make_url("/v1/forecast")),
    ))


async def test_celsius(meteo, ctx, declared):
    result = await declared(get_weather).invoke('{"city": "Paris", "unit": "celsius"}', ctx)
    assert result.ok
    assert json.loads(result.output) == {
        "place": "Paris", "country": "France", "temperature": 20.2, "feels_like": 19.4, "humidity": 55,
        "wind_kmh": 11.3, "conditions": "partly cloudy", "unit": "celsius",
    }
    assert meteo.geocoding == [{"name": "Paris", "count": "1", "language": "en", "format": "json"}]
    assert meteo.forecast == [{
        "latitude": "48.85341", "longitude": "2.3488",
        "current": "temperature_2m,apparent_temperature,relative_humidity_2m,wind_speed_10m,weather_code",
        "temperature_unit": "celsius", "wind_speed_unit": "kmh", "timezone": "auto",
    }]


async def test_fahrenheit(meteo, ctx):
    result = await get_weather("Paris", "fahrenheit", ctx)
    assert (result["temperature"], result["feels_like"], result["unit"]) == (68.4, 66.9, "fahrenheit")
    assert meteo.forecast[0]["temperature_unit"] == "fahrenheit"


async def test_unknown_city(meteo, ctx, declared):
    result = await declared(get_weather).invoke({"city": "Atlantis", "unit": "celsius"}, ctx)
    assert result == ToolResult(False, "Error: No place called 'Atlantis' was found")
    assert meteo.forecast == []


async def test_http_error_is_explained(ctx, declared):
    result = await declared(get_weather).invoke({"city": "Broken", "unit": "celsius"}, ctx)
    assert result == ToolResult(False, "Error: The weather service answered HTTP 400: Parameter count out of range")


async def test_unreachable_service(make_ctx, make_settings, declared):
    url = f"http://127.0.0.1:{free_port()}/v1/search"
    result = await declared(get_weather).invoke(
        {"city": "Paris", "unit": "celsius"}, make_ctx(make_settings(OPEN_METEO_GEOCODING_URL=url)))
    assert not result.ok
    assert result.output.startswith("Error: The weather service could not be reached: ClientConnectorError")


def test_metadata(declared):
    weather = declared(get_weather)
    assert weather.slash_command == "/weather"
    assert weather.side_effects is False
    assert weather.schema()["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
