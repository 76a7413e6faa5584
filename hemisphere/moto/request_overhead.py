"""What moto's server (werkzeug's development server and moto's dispatch) costs around every
request, cut down. Measured by bench/local_endpoint.py.

1. Keep-alive. Werkzeug answers every request with `Connection: close`, because Python's
   http.server does not drain a request body the application left unread before it reads the
   next request line. So every AWS call was a new TCP connection for the client and, for
   moto, a new thread (23 % of moto's samples under the drill's request mix, plus the
   client's connect). Here a request with a Content-Length body keeps its connection: the
   body is read through a reader that stops at the body's end and is drained after the
   answer, so the next request starts where it should. A chunked request body still closes
   its connection (werkzeug's own rule). Werkzeug's after-answer drain, which waits 10 ms for
   stray bytes and would swallow the next request on a kept connection, is not run; this
   handler's drain replaces it. An idle connection's thread ends after IDLE_SECONDS (the
   SDKs' own pools drop idle connections sooner).
2. An access log line per request (12 %: a date and a coloured line formatted for a log
   nobody reads): only answers of 500 and above are logged.
3. The host → service lookup, which tries every service's URL patterns on each request (9 %),
   although a host always names the same service: kept per host.
4. The action's method, found by listing every member of the service's response class with
   `inspect.getmembers` on each request (2 %): the list is kept per class (classes do not
   change while the server runs).
5. Flask's debug-mode helper, which moto's apps run under (`app.debug = True`): every request
   that reads its body defines a new class to give `request.files` a friendlier KeyError for
   HTML forms posted without multipart (3 % of moto's CPU in the write benchmark, py-spy
   `--gil`). No AWS request is such a form: the helper does nothing here.
"""

from __future__ import annotations

import io
from typing import Any, Final

# An idle kept connection's thread waits this long for the next request line. aiobotocore's
# pools close idle connections after 12 s, urllib3 checks a pooled connection before use:
# the server never closes first under a client that is still using it.
IDLE_SECONDS: Final = 75.0


class BodyReader(io.RawIOBase):
    """A request body of `length` bytes read from the connection's stream, never past its
    end; `drain` reads what the application left, so that the next request line is next."""

    def __init__(self, stream: Any, length: int) -> None:
        super().__init__()
        self._stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        view = memoryview(buffer)[: self.remaining]
        data = self._stream.read(len(view))
        view[: len(data)] = data
        self.remaining -= len(data)
        if not data:
            self.remaining = 0  # the client went away mid-body
        return len(data)

    def drain(self) -> bool:
        """Read the rest of the body; False when the connection ended first."""
        while self.remaining > 0:
            data = self._stream.read(min(self.remaining, 65536))
            if not data:
                return False
            self.remaining -= len(data)
        return True


class _NoStrayBytes:
    """Stands in for `selectors` in werkzeug.serving, whose only use is the after-answer
    drain: it finds nothing to read, at once."""

    EVENT_READ: Final = 1

    class DefaultSelector:
        def register(self, *args: object) -> None:
            return None

        def select(self, timeout: float | None = None) -> list[object]:
            return []

        def close(self) -> None:
            return None


def install_quiet_request_log() -> None:
    """Log a request only when moto failed it (5xx): its own errors, not its answers."""
    from werkzeug.serving import WSGIRequestHandler

    logged = WSGIRequestHandler.log_request

    def log_request(
        handler: WSGIRequestHandler, code: int | str = "-", size: int | str = "-"
    ) -> None:
        if str(code).startswith("5"):
            logged(handler, code, size)

    WSGIRequestHandler.log_request = log_request  # type: ignore[method-assign,assignment]


def install_backend_cache() -> None:
    """Make moto's dispatcher look each host up once: its patterns are fixed when the server
    starts, so the same host always finds the same backend (None included). Hosts are few
    (the endpoint's own names), so nothing is ever dropped."""
    import functools

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    found = functools.cache(DomainDispatcherApplication.get_backend_for_host)

    def get_backend_for_host(dispatcher: DomainDispatcherApplication, host: str | None) -> Any:
        return found(dispatcher, host)

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign,assignment]


def install_keep_alive() -> None:
    """Let moto's request handler keep connections whose request bodies it can drain."""
    import werkzeug.serving
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    base_environ = MotoRequestHandler.make_environ
    base_run_wsgi = MotoRequestHandler.run_wsgi
    base_send_header = MotoRequestHandler.send_header

    def make_environ(handler: Any) -> dict[str, Any]:
        environ = base_environ(handler)
        handler._hemisphere_body = None
        length = environ.get("CONTENT_LENGTH", "")
        if environ.get("wsgi.input_terminated") or (length and not length.isdigit()):
            return environ  # chunked, or a length it cannot trust: closed after the answer
        body = BodyReader(handler.rfile, int(length or 0))
        environ["wsgi.input"] = io.BufferedReader(body)
        handler._hemisphere_body = body
        return environ

    def send_header(handler: Any, keyword: str, value: str) -> None:
        closing = keyword.lower() == "connection" and value.lower() == "close"
        if closing and getattr(handler, "_hemisphere_body", None) is not None:
            return  # werkzeug's blanket close: this handler drains the body itself
        base_send_header(handler, keyword, value)

    def run_wsgi(handler: Any) -> None:
        handler._hemisphere_body = None
        base_run_wsgi(handler)
        body: BodyReader | None = handler._hemisphere_body
        if body is None or handler.request_version != "HTTP/1.1" or not body.drain():
            handler.close_connection = True

    handler_class: Any = MotoRequestHandler
    handler_class.make_environ = make_environ
    handler_class.run_wsgi = run_wsgi
    handler_class.send_header = send_header
    handler_class.timeout = IDLE_SECONDS
    # An answer is written as headers, then body: on a kept connection Nagle's algorithm holds
    # the body until the client ACKs the headers, which it delays (40 ms). A closed
    # connection flushed it; a kept one must not wait.
    handler_class.disable_nagle_algorithm = True
    setattr(werkzeug.serving, "selectors", _NoStrayBytes)  # noqa: B010 (not exported)


def install_method_names_cache() -> None:
    """moto's dispatch asks `method_names_from_class` for a class's methods on every request;
    answer each class once."""
    import functools

    import moto.core.responses
    from moto.core.utils import method_names_from_class

    # responses.py imported the function by name: its own binding is the one to replace.
    listed = functools.cache(method_names_from_class)
    setattr(moto.core.responses, "method_names_from_class", listed)  # noqa: B010


def install_no_form_debug_helper() -> None:
    """Skip Flask's per-request class for `request.files` in debug mode (see 5. above)."""
    import flask.debughelpers

    def attach_nothing(request: Any) -> None:
        return None

    # Flask imports it by name from the module at each use: the module's binding is the one.
    setattr(flask.debughelpers, "attach_enctype_error_multidict", attach_nothing)  # noqa: B010


def install_all() -> None:
    install_keep_alive()
    install_method_names_cache()
    install_quiet_request_log()
    install_backend_cache()
    install_no_form_debug_helper()
