"""Log lines: JSON with the request and trace ids when HEMISPHERE_LOG_FORMAT=json, text
otherwise."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from hemisphere.logs import configure_logging, request_id
from hemisphere.settings import Settings, SettingsError


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_request_and_trace_ids() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    token = request_id.set("req-1")
    try:
        with trace.use_span(NonRecordingSpan(context)):
            logging.getLogger("hemisphere.test").warning("order %s placed", "o-1")
    finally:
        request_id.reset(token)
    logging.getLogger("hemisphere.test").error("outside a request")

    inside, outside = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "order o-1 placed"
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "hemisphere.test"
    assert inside["requestId"] == "req-1"
    assert inside["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["spanId"] == "b7ad6b7169203331"
    assert inside["time"].endswith("Z")
    assert "requestId" not in outside and "traceId" not in outside


def test_a_traceback_stays_inside_its_json_line() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("hemisphere.test").exception("failed")
    (line,) = out.getvalue().splitlines()
    assert "ValueError: boom" in orjson.loads(line)["exc"]


def test_text_is_the_default() -> None:
    out = io.StringIO()
    configure_logging(Settings(), stream=out, level="INFO")
    logging.getLogger("hemisphere.test").info("hello")
    assert out.getvalue().rstrip().endswith("INFO hemisphere.test: hello")


def test_log_format_setting() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"HEMISPHERE_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="HEMISPHERE_LOG_FORMAT"):
        Settings.from_env({"HEMISPHERE_LOG_FORMAT": "xml"})
