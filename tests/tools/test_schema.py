"""Schemas derived from typed signatures and docstrings, in OpenAI strict form."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel

from assist_bot.tools import ToolArgumentsError, ToolContext, ToolDefinitionError, make_tool, tool, tool_of

pytestmark = pytest.mark.timeout(10)


class Stop(BaseModel):
    """A stop on the way."""

    place: str
    minutes: int = 10


def plan_trip(
    city: str,
    unit: Literal["celsius", "fahrenheit"],
    context: ToolContext,
    days: int = 3,
    note: str | None = None,
    stops: list[Stop] | None = None,
) -> str:
    """Plan a trip to a city.

    Use it when the user asks for an itinerary.

    Args:
        city: Where to go,
            for example "Lisbon".
        unit (str): Temperature unit for forecasts.
        context: Injected; never described to the model.
        days: Length of the trip.

    Returns:
        The plan as text.
    """
    return "ok"


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_openai_tool_shape():
    spec = make_tool(plan_trip).openai_tool()
    assert spec["type"] == "function"
    assert spec["name"] == "plan_trip"
    assert spec["strict"] is True
    assert spec["description"] == "Plan a trip to a city.\n\nUse it when the user asks for an itinerary."
    assert spec["parameters"]["type"] == "object"


def test_schema_is_strict_everywhere():
    schema = make_tool(plan_trip).schema()
    assert schema["required"] == ["city", "unit", "days", "note", "stops"]
    assert schema["additionalProperties"] is False
    objects = [node for node in _walk(schema) if node.get("type") == "object"]
    assert len(objects) == 2  # the arguments and the Stop model
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    assert not any("default" in node for node in _walk(schema))
    assert schema["$defs"]["Stop"]["required"] == ["place", "minutes"]


def test_context_is_hidden_and_docstring_describes_params():
    props = make_tool(plan_trip).schema()["properties"]
    assert "context" not in props
    assert props["city"] == {"type": "string", "description": 'Where to go, for example "Lisbon".'}
    assert props["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "description": "Temperature unit for forecasts.",
    }


async def find_room_numpy(building: str, seats: int) -> str:
    """Find a free meeting room.

    Looks at today's bookings only.

    Parameters
    ----------
    building : str
        The building's short name,
        as on the door sign.
    seats : int
        How many people must fit.
    """
    return building


async def find_room_rest(building: str, seats: int) -> str:
    """Find a free meeting room.

    :param building: The building's short name, as on the door sign.
    :param seats: How many people must fit.
    :returns: the room's name.
    """
    return building


@pytest.mark.parametrize("fn", [find_room_numpy, find_room_rest], ids=["numpy", "rest"])
def test_a_company_tool_may_describe_its_params_in_numpy_or_rest_style(fn):
    spec = make_tool(fn, name="find_room").openai_tool()
    assert spec["description"].startswith("Find a free meeting room.")
    assert "Parameters" not in spec["description"] and ":param" not in spec["description"]
    props = spec["parameters"]["properties"]
    assert props["building"]["description"] == "The building's short name, as on the door sign."
    assert props["seats"]["description"] == "How many people must fit."


def test_optional_params_are_nullable():
    props = make_tool(plan_trip).schema()["properties"]
    assert props["days"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert "3" in props["days"]["description"]  # the model learns what null means
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["stops"]["anyOf"][1] == {"type": "null"}


def test_validate_returns_kwargs_and_maps_null_to_default():
    t = make_tool(plan_trip)
    kwargs = t.validate(
        '{"city": "Lisbon", "unit": "celsius", "days": null, "note": null, '
        '"stops": [{"place": "Sintra", "minutes": 90}]}'
    )
    assert kwargs == {
        "city": "Lisbon",
        "unit": "celsius",
        "days": 3,
        "note": None,
        "stops": [Stop(place="Sintra", minutes=90)],
    }
    assert t.validate({"city": "Lisbon", "unit": "fahrenheit", "days": 5})["days"] == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{}", "city: field required; unit: field required"),
        ({"city": "Oslo", "unit": "kelvin"}, "unit: must be one of 'celsius', 'fahrenheit'"),
        ({"city": 3, "unit": "celsius", "days": "many"}, "city: must be a string; days: must be an integer"),
        ({"city": "Oslo", "unit": "celsius", "stops": [{"minutes": 1}]}, "stops[0].place: field required"),
        ({"city": "Oslo", "unit": "celsius", "colour": "red"}, "colour: unexpected field"),
        ("{not json", "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object"),
    ],
)
def test_validation_errors_are_plain_words(arguments, message):
    with pytest.raises(ToolArgumentsError) as caught:
        make_tool(plan_trip).validate(arguments)
    assert str(caught.value) == message


def test_parameter_names_that_clash_with_pydantic_still_work():
    def clashing(json: str, copy: bool, schema: int) -> str:
        """Names BaseModel uses itself."""
        return "ok"

    t = make_tool(clashing)
    assert t.schema()["required"] == ["json", "copy", "schema"]
    assert t.validate({"json": "a", "copy": True, "schema": 2}) == {"json": "a", "copy": True, "schema": 2}


def test_decorator_bare_and_with_options_returns_the_function():
    def ping() -> str:
        """Answer pong."""
        return "pong"

    def make_report(title: str) -> str:
        """Make a report."""
        return title

    assert tool(ping) is ping
    assert tool(name="report", side_effects=True, timeout=2, allow_users=["U1"])(make_report) is make_report
    # The Tool rides on the function itself: no list kept anywhere, nothing to reset between tests.
    tools = {t.name: t for t in (tool_of(ping), tool_of(make_report)) if t is not None}
    assert tools["ping"].slash_command == "/ping"
    assert tools["ping"].side_effects is False and tools["ping"].timeout is None
    assert tools["ping"].allow_users is None and tools["ping"].allow_channels is None
    report = tools["report"]
    assert (report.fn, report.side_effects, report.timeout, report.allow_users) == (
        make_report,
        True,
        2,
        frozenset({"U1"}),
    )
    assert report.slash_command == "/report"
    assert make_tool(plan_trip).slash_command == "/plan-trip"
    assert make_tool(plan_trip, slash_command="/trip").slash_command == "/trip"


def test_definitions_strict_mode_cannot_express_are_refused():
    def untyped(city) -> str:  # type: ignore[no-untyped-def]
        """No type."""
        return city

    def free_form(tags: dict[str, str]) -> str:
        """A free-form mapping."""
        return ""

    def variadic(*cities: str) -> str:
        """Positional only."""
        return ""

    with pytest.raises(ToolDefinitionError, match="'city' has no type annotation"):
        make_tool(untyped)
    with pytest.raises(ToolDefinitionError, match="free-form mappings"):
        make_tool(free_form)
    with pytest.raises(ToolDefinitionError, match="keyword"):
        make_tool(variadic)
    with pytest.raises(ToolDefinitionError, match="tool name"):
        make_tool(plan_trip, name="plan trip")
    with pytest.raises(ToolDefinitionError, match="slash command"):
        make_tool(plan_trip, slash_command="trip")
