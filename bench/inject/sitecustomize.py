"""Bench-only instrumentation, loaded into the bot process through PYTHONPATH
(src/ is untouched): when BENCH_LAG_FILE is set, `asyncio.run` is wrapped so
that a sampler task runs beside the bot and records event-loop lag — how late
a `sleep(PERIOD)` wakes up — appending "monotonic_time lag_seconds" lines to
that file every second. Costs ~20 wake-ups per second."""

import os

_path = os.environ.get("BENCH_LAG_FILE")
if _path:
    import asyncio
    import time

    _PERIOD = float(os.environ.get("BENCH_LAG_PERIOD", "0.05"))
    _orig_run = asyncio.run

    def _append(lines: list[str]) -> None:
        with open(_path, "a") as f:
            f.writelines(lines)

    async def _sampler() -> None:
        buf: list[str] = []
        last_flush = time.monotonic()
        try:
            while True:
                t0 = time.monotonic()
                await asyncio.sleep(_PERIOD)
                t1 = time.monotonic()
                buf.append(f"{t1:.6f} {t1 - t0 - _PERIOD:.6f}\n")
                if t1 - last_flush >= 1.0:
                    # Off the loop: the sampler must not add the lag it measures.
                    await asyncio.to_thread(_append, buf[:])
                    buf.clear()
                    last_flush = t1
        finally:
            _append(buf)  # the loop is ending: nothing left to delay

    def _run(main, **kwargs):
        async def wrapped():
            task = asyncio.ensure_future(_sampler())
            try:
                return await main
            finally:
                task.cancel()

        return _orig_run(wrapped(), **kwargs)

    asyncio.run = _run
