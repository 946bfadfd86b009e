"""The layering the code relies on: the engine never imports Slack, the Slack side
never imports OpenAI, and the neutral modules import neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "assist_bot"
SLACK = ("slack_sdk", "slack_bolt")
OPENAI = ("openai",)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(*parts: str) -> list[Path]:
    return sorted(PACKAGE.joinpath(*parts).rglob("*.py"))


def offending(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(PACKAGE)}: {name}"
        for p in paths
        for name in imports_of(p)
        if name.split(".")[0] in banned
        or name.startswith("assist_bot.slack" if "slack_sdk" in banned else "assist_bot.engine")
    ]


@pytest.mark.parametrize(
    ("where", "banned"),
    [
        (("engine",), SLACK),
        (("slack",), OPENAI),
        (("tools",), SLACK + OPENAI),
        (("store",), SLACK + OPENAI),
    ],
)
def test_layers_do_not_import_each_other(where, banned):
    assert offending(modules(*where), banned) == []


def test_neutral_modules_import_neither_side():
    neutral = [
        PACKAGE / f"{name}.py"
        for name in (
            "dispatch",
            "dispatch_ports",
            "crash_recovery",
            "events",
            "inbound",
            "uploads",
            "filetypes",
            "assistants",
            "settings",
            "texts",
            "errors",
            "usage",
            "turn_usage",
            "stopping",
        )
    ]
    assert offending(neutral, SLACK) == [] and offending(neutral, OPENAI) == []
