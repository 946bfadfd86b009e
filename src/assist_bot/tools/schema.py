"""From a typed function to a pydantic model and an OpenAI strict JSON schema.

Nothing here is hand-written per tool: the signature gives the types, a Google-style
docstring gives the descriptions, pydantic builds the schema, and `strict_schema`
rewrites it into the subset OpenAI's strict mode accepts.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docstring_parser
import pydantic
from pydantic import ConfigDict, Field

from assist_bot.tools.errors import ToolDefinitionError


@dataclass(frozen=True)
class Docstring:
    description: str
    params: dict[str, str]


def parse_docstring(doc: str | None) -> Docstring:
    """A docstring's prose and its parameter descriptions, in any style docstring_parser knows
    (Google `Args:`, NumPy `Parameters`, reST `:param x:`, Epydoc): a company's own tools are
    written in whichever style its code uses."""
    try:
        parsed = docstring_parser.parse(doc or "")
    except docstring_parser.ParseError:  # prose that looks like a section but is not one
        return Docstring(description=inspect.cleandoc(doc or "").strip(), params={})
    gap = "\n\n" if parsed.blank_after_short_description else "\n"
    description = gap.join(part for part in (parsed.short_description, parsed.long_description) if part)
    # A description that continues over several lines is one line for the model.
    params = {p.arg_name.lstrip("*"): " ".join((p.description or "").split()) for p in parsed.params}
    return Docstring(description=description.strip(), params=params)


@dataclass(frozen=True)
class Signature:
    """What `build_params_model` learnt from a function."""

    model: type[pydantic.BaseModel]
    fields: dict[str, str]  # internal field name -> parameter name
    defaults: dict[str, Any]  # parameter name -> its default, when None must map back to it
    context_param: str | None


def build_params_model(fn: Callable[..., Any], *, name: str, context_type: type) -> Signature:
    """A pydantic model of `fn`'s parameters; the `context_type` parameter is left out."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError and friends from unresolved string annotations
        raise ToolDefinitionError(f"tool {name}: cannot resolve the type hints: {exc}") from None
    docs = parse_docstring(fn.__doc__).params
    definitions: dict[str, Any] = {}
    fields: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    context_param = None
    for index, param in enumerate(inspect.signature(fn).parameters.values()):
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise ToolDefinitionError(f"tool {name}: parameter {param.name!r} must be passable by keyword")
        if param.name not in hints:
            raise ToolDefinitionError(f"tool {name}: parameter {param.name!r} has no type annotation")
        annotation = hints[param.name]
        if annotation is context_type or typing.get_origin(annotation) is context_type:  # ToolContext[X] too
            context_param = param.name
            continue
        # Internal field names avoid clashes with BaseModel attributes (`json`, `copy`,
        # `_private`…); the alias keeps the parameter's own name in schema and errors.
        field_name = f"p{index}"
        fields[field_name] = param.name
        description = docs.get(param.name)
        if param.default is param.empty:
            definitions[field_name] = (annotation, Field(alias=param.name, description=description))
            continue
        # Strict mode makes every field required, so an optional parameter is sent as
        # null; None maps back to the Python default unless None is a real value.
        if param.default is not None and not _allows_none(annotation):
            defaults[param.name] = param.default
            description = f"{description + ' ' if description else ''}(null means {param.default!r})"
        definitions[field_name] = (
            annotation | None,
            Field(param.default, alias=param.name, description=description),
        )
    model = pydantic.create_model(
        _model_name(name), __config__=ConfigDict(extra="forbid", populate_by_name=False), **definitions
    )
    return Signature(model=model, fields=fields, defaults=defaults, context_param=context_param)


def _allows_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _allows_none(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_allows_none(arg) for arg in typing.get_args(annotation))
    return False


def _model_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_-]", name)) + "Args"


def strict_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The model's JSON schema rewritten for OpenAI strict mode."""
    schema = copy.deepcopy(model.model_json_schema())
    defs = schema.get("$defs", {})
    return _strict(schema, defs, path="")


def _strict(node: Any, defs: dict[str, Any], *, path: str) -> Any:
    if isinstance(node, list):
        return [_strict(item, defs, path=path) for item in node]
    if not isinstance(node, dict):
        return node
    # OpenAI rejects a $ref with sibling keywords (pydantic adds `description` next to it).
    if "$ref" in node and len(node) > 1:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("default", "title"):
            continue  # strict mode has no defaults; titles are noise for the model
        if key in ("properties", "$defs"):
            out[key] = {name: _strict(sub, defs, path=f"{path}.{name}") for name, sub in value.items()}
        else:
            out[key] = _strict(value, defs, path=path)
    if out.get("type") == "object" or "properties" in out:
        if out.get("additionalProperties") not in (None, False):
            raise ToolDefinitionError(
                f"parameter {path.lstrip('.') or 'arguments'}: free-form mappings cannot be expressed "
                "in a strict schema; use a pydantic model or TypedDict"
            )
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
        out.setdefault("properties", {})
    return out


def describe_errors(exc: pydantic.ValidationError) -> str:
    """`city: field required; unit: must be one of 'celsius', 'fahrenheit'`."""
    return "; ".join(f"{_location(e['loc'])}: {_reason(e)}" for e in exc.errors(include_url=False))


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "arguments"


_REASONS = {
    "missing": "field required",
    "extra_forbidden": "unexpected field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def _reason(error: Any) -> str:
    if error["type"] in _REASONS:
        return _REASONS[error["type"]]
    if error["type"] in ("literal_error", "enum"):
        # pydantic says "'a', 'b' or 'c'"; a flat list reads better to the model.
        head, _, last = str(error.get("ctx", {}).get("expected", "")).rpartition(" or ")
        return f"must be one of {head + ', ' + last if head else last}"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    return message[:1].lower() + message[1:]
