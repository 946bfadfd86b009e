"""Current weather from Open-Meteo (free, no key): geocode the place, then ask for now."""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
from pydantic_settings import SettingsConfigDict

from assist_bot.tools.errors import ToolFailure
from assist_bot.tools.registry import ToolContext, tool
from assist_bot.tools.settings import ToolSettings

# Each request gets its own bound, well inside the tool's overall time-out.
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)

_CURRENT = "temperature_2m,apparent_temperature,relative_humidity_2m,wind_speed_10m,weather_code"

# WMO weather interpretation codes, as documented by Open-Meteo.
_WMO = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snow fall",
    73: "moderate snow fall",
    75: "heavy snow fall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


class WeatherSettings(ToolSettings):
    """Open-Meteo's endpoints (OPEN_METEO_GEOCODING_URL, OPEN_METEO_FORECAST_URL)."""

    model_config = SettingsConfigDict(env_prefix="OPEN_METEO_")

    geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    forecast_url: str = "https://api.open-meteo.com/v1/forecast"


Context = ToolContext[WeatherSettings]


@tool(slash_command="/weather", settings=WeatherSettings)
async def get_weather(city: str, ctx: Context, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """Get the current weather for a city.

    Args:
        city: The city name, e.g. "Paris" or "San Francisco".
        unit: The temperature unit to answer in.
    """
    urls = ctx.settings or WeatherSettings.model_construct()  # a tool built without loading: the defaults
    place = await _geocode(ctx, urls.geocoding_url, city)
    forecast = await _get_json(
        ctx,
        urls.forecast_url,
        {
            "latitude": str(place["latitude"]),
            "longitude": str(place["longitude"]),
            "current": _CURRENT,
            "temperature_unit": unit,
            "wind_speed_unit": "kmh",
            "timezone": "auto",
        },
    )
    now = forecast.get("current")
    if not isinstance(now, dict):
        raise ToolFailure("The weather service sent no current conditions")
    return {
        "place": place.get("name", city),
        "country": place.get("country"),
        "temperature": now.get("temperature_2m"),
        "feels_like": now.get("apparent_temperature"),
        "humidity": now.get("relative_humidity_2m"),
        "wind_kmh": now.get("wind_speed_10m"),
        "conditions": _conditions(now.get("weather_code")),
        "unit": unit,
    }


def _conditions(code: Any) -> str:
    try:
        return _WMO.get(int(code), "unknown")
    except (TypeError, ValueError):
        return "unknown"


async def _geocode(ctx: Context, url: str, city: str) -> dict[str, Any]:
    found = await _get_json(
        ctx,
        url,
        {
            "name": city,
            "count": "1",
            "language": "en",
            "format": "json",
        },
    )
    results = found.get("results") or []
    if not results:
        raise ToolFailure(f"No place called {city!r} was found")
    return results[0]


async def _get_json(ctx: Context, url: str, params: dict[str, str]) -> dict[str, Any]:
    try:
        async with ctx.http.get(url, params=params, timeout=_REQUEST_TIMEOUT) as response:
            if response.status >= 400:
                raise ToolFailure(f"The weather service answered HTTP {response.status}{await _reason(response)}")
            body = await response.json(content_type=None)
    except TimeoutError:
        raise ToolFailure(f"The weather service did not answer within {_REQUEST_TIMEOUT.total:g} seconds") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise ToolFailure(f"The weather service could not be reached: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise ToolFailure("The weather service sent an unexpected answer")
    return body


async def _reason(response: aiohttp.ClientResponse) -> str:
    # Open-Meteo explains a 400 as {"error": true, "reason": "…"}; worth passing on.
    try:
        body = await response.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        return ""
    reason = body.get("reason") if isinstance(body, dict) else None
    return f": {reason}" if reason else ""
