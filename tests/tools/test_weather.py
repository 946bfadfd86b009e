"""get_weather against a fake Open-Meteo (geocoding + forecast) on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from assist_bot.tools import ToolResult
from assist_bot.tools.builtin.weather import get_weather
from tests.tools.conftest import free_port

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def weather(meteo, loaded):
    """get_weather with its own settings read from OPEN_METEO_* (the names users set)."""
    return loaded(
        get_weather,
        OPEN_METEO_GEOCODING_URL=str(meteo.server.make_url("/v1/search")),
        OPEN_METEO_FORECAST_URL=str(meteo.server.make_url("/v1/forecast")),
    )


@pytest.fixture
def ctx(make_ctx):
    return make_ctx()


async def test_celsius(meteo, ctx, weather):
    result = await weather.invoke('{"city": "Paris", "unit": "celsius"}', ctx)
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


async def test_fahrenheit(meteo, ctx, weather):
    result = json.loads((await weather.invoke({"city": "Paris", "unit": "fahrenheit"}, ctx)).output)
    assert (result["temperature"], result["feels_like"], result["unit"]) == (68.4, 66.9, "fahrenheit")
    assert meteo.forecast[0]["temperature_unit"] == "fahrenheit"


async def test_without_a_unit_the_default_applies(meteo, ctx, weather):
    # The model sends null for an optional parameter (strict mode); a person may leave it out.
    for arguments in ({"city": "Paris", "unit": None}, {"city": "Paris"}):
        result = await weather.invoke(arguments, ctx)
        assert json.loads(result.output)["unit"] == "celsius"
    assert [f["temperature_unit"] for f in meteo.forecast] == ["celsius", "celsius"]


async def test_unknown_city(meteo, ctx, weather):
    result = await weather.invoke({"city": "Atlantis", "unit": "celsius"}, ctx)
    assert result == ToolResult(False, "Error: No place called 'Atlantis' was found")
    assert meteo.forecast == []


async def test_http_error_is_explained(ctx, weather):
    result = await weather.invoke({"city": "Broken", "unit": "celsius"}, ctx)
    assert result == ToolResult(False, "Error: The weather service answered HTTP 400: Parameter count out of range")


async def test_unreachable_service(make_ctx, loaded):
    url = f"http://127.0.0.1:{free_port()}/v1/search"
    result = await loaded(get_weather, OPEN_METEO_GEOCODING_URL=url).invoke({"city": "Paris"}, make_ctx())
    assert not result.ok
    assert result.output.startswith("Error: The weather service could not be reached: ClientConnectorError")


def test_metadata(declared):
    weather = declared(get_weather)
    assert weather.slash_command == "/weather"
    assert weather.side_effects is False
    unit = weather.schema()["properties"]["unit"]
    # Strict mode: required but nullable, and the model is told what null means.
    assert {"enum": ["celsius", "fahrenheit"], "type": "string"} in unit["anyOf"] and {"type": "null"} in unit["anyOf"]
    assert "null means 'celsius'" in unit["description"]
    assert weather.schema()["required"] == ["city", "unit"]
