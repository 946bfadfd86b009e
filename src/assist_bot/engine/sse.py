"""Server-sent events, read raw.

The SDK turns every SSE event into a typed pydantic model (~0.15 ms each); a
300-token answer has 300+ events, which made parsing the bot's main CPU cost
(docs/benchmarks.md). We read the lines ourselves and hand on plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Each event's JSON data, as a dict. `data:` lines are joined until a blank line
    ends the event (SSE framing); `event:`, `id:` and comments are not needed: the JSON
    carries its own `type`."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        elif not line and data:
            payload = "\n".join(data)
            data = []
            if payload.startswith("[DONE]"):
                return
            yield json.loads(payload)
    if data and not data[0].startswith("[DONE]"):
        yield json.loads("\n".join(data))
