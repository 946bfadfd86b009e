"""The environment of a process a test starts."""

from __future__ import annotations

import os
from collections.abc import Mapping

# Set by coverage's subprocess patch (`scripts/test --cov`) in the test process's own
# environment only: a child started with an environment of its own must be handed it.
_COVERAGE = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def child_env(values: Mapping[str, str]) -> dict[str, str]:
    """Exactly `values` (what a person would set), plus, under coverage, what lets the
    child measure itself: cli.py, manifest.py and __main__.py run only in children."""
    return {**values, **{name: os.environ[name] for name in _COVERAGE if name in os.environ}}
