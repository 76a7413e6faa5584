"""hemisphere.moto.server: what the local endpoint no longer pays on every request (an access
log line, a search of every service's URL patterns), and what it still does."""

from __future__ import annotations

import io
import logging

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler

from hemisphere.moto.request_overhead import (
    install_backend_cache,
    install_method_names_cache,
    install_no_form_debug_helper,
    install_quiet_request_log,
)


def test_a_host_is_looked_up_once_and_its_answer_kept_none_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str | None] = []

    def find(dispatcher: object, host: str | None) -> str | None:
        asked.append(host)
        return None if host is None else host.split(".")[0]

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", find)
    install_backend_cache()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    hosts = ["dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com", None]
    for _ in range(3):
        assert [dispatcher.get_backend_for_host(h) for h in hosts] == ["dynamodb", "sqs", None]
    assert asked == hosts


def test_the_dispatcher_still_finds_each_service(monkeypatch: pytest.MonkeyPatch) -> None:
    original = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", original)
    dispatcher = DomainDispatcherApplication(create_backend_app)
    hosts = ["dynamodb.eu-west-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com", "moto_api"]
    expected = [original(dispatcher, h) for h in hosts]
    assert expected[0] == "dynamodb" and expected[1] == "sqs"
    install_backend_cache()
    assert [dispatcher.get_backend_for_host(h) for h in hosts] == expected


class _Handler(WSGIRequestHandler):
    def __init__(self) -> None:  # no socket: only log_request is called
        self.requestline = "POST / HTTP/1.1"
        self.command, self.path, self.request_version = "POST", "/", "HTTP/1.1"
        self.client_address = ("127.0.0.1", 1)


def test_only_failed_requests_are_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WSGIRequestHandler, "log_request", WSGIRequestHandler.log_request)
    install_quiet_request_log()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.addHandler(handler)
    monkeypatch.setattr(werkzeug_log, "level", logging.INFO)
    try:
        for code in (200, 400, 404):
            _Handler().log_request(code, 10)
        assert out.getvalue() == ""
        _Handler().log_request(500, 10)
        assert "POST / HTTP/1.1" in out.getvalue() and "500" in out.getvalue()
    finally:
        werkzeug_log.removeHandler(handler)


def test_a_response_class_methods_are_listed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.core.responses
    from moto.core.utils import method_names_from_class
    from moto.dynamodb.responses import DynamoHandler

    monkeypatch.setattr(moto.core.responses, "method_names_from_class", method_names_from_class)
    install_method_names_cache()
    listed = getattr(moto.core.responses, "method_names_from_class")  # noqa: B009
    assert listed(DynamoHandler) == method_names_from_class(DynamoHandler)
    assert "get_item" in listed(DynamoHandler)
    listed(DynamoHandler)
    assert listed.cache_info().hits >= 2


def test_a_request_body_read_in_debug_mode_makes_no_class(monkeypatch: pytest.MonkeyPatch) -> None:
    import flask
    import flask.debughelpers
    from werkzeug.datastructures import ImmutableMultiDict

    app = flask.Flask("debug-app")
    app.debug = True  # as moto's apps run

    @app.post("/")
    def echo() -> dict[str, object]:
        body = flask.request.get_data()
        return {"plain": type(flask.request.files) is ImmutableMultiDict, "body": body.decode()}

    original = flask.debughelpers.attach_enctype_error_multidict
    monkeypatch.setattr(flask.debughelpers, "attach_enctype_error_multidict", original)
    answer = app.test_client().post("/", data=b'{"a": 1}', content_type="application/json")
    assert answer.json == {"plain": False, "body": '{"a": 1}'}  # Flask's helper, per request
    install_no_form_debug_helper()
    answer = app.test_client().post("/", data=b'{"a": 1}', content_type="application/json")
    assert answer.json == {"plain": True, "body": '{"a": 1}'}
