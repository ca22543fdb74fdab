"""What the test run must never write to a log: every token, API key, session id, password and webhook
secret the tests made or were given is noted here, every log line of the run is kept, and at the end
of the run (a session fixture in conftest) the lines are searched for each of them."""

from __future__ import annotations

import logging
from typing import Any

SECRETS: set[str] = set()
LINES: list[str] = []
MAX_LINES = 2_000_000


def watch(*values: str | None) -> None:
    for value in values:
        if value and len(value) >= 12:
            SECRETS.add(value)


def capture(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: keeps what is about to be logged, then passes it on."""
    if len(LINES) < MAX_LINES:
        LINES.append(repr(event))
    return event


class Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if len(LINES) < MAX_LINES:
            LINES.append(self.format(record))


def leaks(lines: list[str] | None = None, secrets: set[str] | None = None) -> list[str]:
    """The watched secrets found in the lines, each shown by its first characters only."""
    text = "\n".join(LINES if lines is None else lines)
    return sorted(s[:6] + "..." for s in (SECRETS if secrets is None else secrets) if s in text)
