"""Keep client addresses, tokens and payloads out of the relay's logs.

The relay logs only counts and its own ids (connection ids, room serial
numbers). aiohttp's access log is off; aiohttp's own loggers interpolate a
client address into a few messages, so every argument of theirs is replaced.
"""

from __future__ import annotations

import logging
import re

AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.websocket", "aiohttp.access")
_SPEC = re.compile(r"%(\([^)]*\))?[#0 +-]*(\*|\d+)?(\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")


def _blank(match: re.Match[str]) -> str:
    return "%" if match.group(0) == "%%" else "-"


class RedactArguments(logging.Filter):
    """Replace every %-placeholder of a record by ``-`` (the template and traceback stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = _SPEC.sub(_blank, str(record.msg))
            record.args = None
        return True


_FILTER = RedactArguments()


def install() -> None:
    """Attach the redacting filter to aiohttp's loggers (idempotent)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
