"""Which way a shared file goes, by its extension: a channel's knowledge
(file search), the thread's code interpreter, or the model's eyes.
An assistant may override single extensions (`file_routes` in the assistants file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Route = Literal["knowledge", "code", "image"]

# The file types OpenAI's file search accepts.
DOCUMENTS = frozenset("c cpp cs css doc docx go html java js json md pdf php pptx py rb sh tex ts txt".split())
# Tabular and binary data, for the code interpreter.
DATA = frozenset("csv tsv xlsx xls parquet xml zip ipynb jsonl".split())
IMAGES = frozenset("png jpg jpeg gif webp".split())

DEFAULT_ROUTES: dict[str, Route] = {
    **{ext: "knowledge" for ext in DOCUMENTS},
    **{ext: "code" for ext in DATA},
    **{ext: "image" for ext in IMAGES},
}


# Slack's `filetype` codes that are not extensions, for names without one (snippets: "Untitled").
SLACK_FILETYPES = {"text": "txt", "markdown": "md", "python": "py", "javascript": "js", "shell": "sh", "ruby": "rb"}


def extension(name: str, filetype: str = "") -> str:
    if "." in name:
        return name.rsplit(".", 1)[1].lower()
    return SLACK_FILETYPES.get(filetype.lower(), filetype.lower())


def route_for(name: str, filetype: str = "", overrides: Mapping[str, str] | None = None) -> Route | None:
    ext = extension(name, filetype)
    routes = {**DEFAULT_ROUTES, **(overrides or {})}
    route = routes.get(ext)
    return route if route in ("knowledge", "code", "image") else None  # type: ignore[return-value]


def supported_summary() -> str:
    return (
        f"documents ({', '.join(sorted(DOCUMENTS))}), data ({', '.join(sorted(DATA))}) "
        f"and images ({', '.join(sorted(IMAGES))})"
    )
