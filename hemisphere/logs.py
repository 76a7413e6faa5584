"""Log records of every role, as text for a terminal or as JSON lines for a log pipeline
(HEMISPHERE_LOG_FORMAT), each carrying the id of the HTTP request it happened in and the
trace it belongs to, so that one request's lines can be found among many instances'."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
from opentelemetry import trace

from hemisphere.settings import Settings

# The id of the HTTP request being served (hemisphere.http.telemetry sets it; asyncio copies
# it into every task the request starts), None outside a request.
request_id: ContextVar[str | None] = ContextVar("hemisphere_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TERMINAL_FORMAT = "%(levelname)s %(name)s: %(message)s"

# Libraries that narrate every call at INFO: one line per change the stream publisher sends.
_CHATTY = ("httpx",)


def configure_logging(
    settings: Settings,
    *,
    level: str | int | None = None,
    stream: TextIO | None = None,
    text_format: str = TEXT_FORMAT,
) -> None:
    """The root logger of this process: one handler on `stream` (stdout, where a container
    runtime collects it), at `level` (default HEMISPHERE_LOG_LEVEL), formatting as
    HEMISPHERE_LOG_FORMAT says. `text_format` is the text form's layout (a terminal's may
    leave the time out)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=level or settings.log_level, handlers=[handler], force=True)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with milliseconds), level, logger,
    message, and when known requestId, traceId and spanId; exc for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["requestId"] = current
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["traceId"] = format(span.trace_id, "032x")
            line["spanId"] = format(span.span_id, "016x")
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _utc_iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
