"""The memory twin's keyspace: a dict whose entries expire, as Redis keys with a TTL do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Expiring:
    """A dict whose entries expire, like Redis keys with a TTL, by `clock` (monotonic
    seconds; tests pass a clock they move by hand instead of sleeping)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    def get(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= self._clock():
            del self._data[key]
            return None
        return value

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self._data[key] = (value, None if ttl is None else self._clock() + ttl)

    def pop(self, key: str) -> Any:
        value = self.get(key)
        self._data.pop(key, None)
        return value

    def keys(self) -> list[str]:
        return [key for key in list(self._data) if self.get(key) is not None]

    def ttl(self, key: str) -> float | None:
        """Seconds the entry has left (None: no entry, or one that never expires)."""
        if self.get(key) is None:
            return None
        deadline = self._data[key][1]
        return None if deadline is None else deadline - self._clock()

    def sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, d) in self._data.items() if d is not None and d <= now]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()
