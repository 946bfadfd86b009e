"""get_weather against a fake Open-Meteo (geocoding + forecast) on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from assist_bot.tools import ToolResult
from assist_bot.tools.builtin.weather import get_weather
from tests.tools.conftest import free_port

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def ctx(meteo, make_ctx, make_settings):
    return make_ctx(
        make_settings(
            OPEN_METEO_GEOCODING_URL=str(meteo.server.make_url("/v1/search")),
            OPEN_METEO_FORECAST_URL=str(meteo.server.make_url("/v1/forecast")),
        )
    )


async def test_celsius(meteo, ctx, declared):
    result = await declared(get_weather).invoke('{"city": "Paris", "unit": "celsius"}', ctx)
    assert result.ok
    assert json.loads(result.output) == {
        "place": "Paris",
        "country": "France",
        "temperature": 20.2,
        "feels_like": 19.4,
        "humidity": 55,
        "wind_kmh": 11.3,
        "conditions": "partly cloudy",
        "unit": "celsius",
    }
    assert meteo.geocoding == [{"name": "Paris", "count": "1", "language": "en", "format": "json"}]
    assert meteo.forecast == [
        {
            "latitude": "48.85341",
            "longitude": "2.3488",
            "current": "temperature_2m,apparent_temperature,relative_humidity_2m,wind_speed_10m,weather_code",
            "temperature_unit": "celsius",
            "wind_speed_unit": "kmh",
            "timezone": "auto",
        }
    ]


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
        {"city": "Paris", "unit": "celsius"}, make_ctx(make_settings(OPEN_METEO_GEOCODING_URL=url))
    )
    assert not result.ok
    assert result.output.startswith("Error: The weather service could not be reached: ClientConnectorError")


def test_metadata(declared):
    weather = declared(get_weather)
    assert weather.slash_command == "/weather"
    assert weather.side_effects is False
    assert weather.schema()["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
