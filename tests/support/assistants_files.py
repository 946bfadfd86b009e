"""An assistants file as an operator writes one (ASSIST_BOT_ASSISTANTS names its path)."""

from __future__ import annotations

from pathlib import Path


def write_assistants_file(tmp_path: Path, text: str) -> Path:
    """`text` (TOML) as tmp_path/assistants.toml; returns its path."""
    path = tmp_path / "assistants.toml"
    path.write_text(text, encoding="utf-8")
    return path
