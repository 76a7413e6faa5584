"""GraphQL over HTTP as AppSync serves it: POST /graphql with a JSON body, authenticated by API
key or SigV4; GET /graphql from a browser opens GraphiQL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from domain.auth import Caller, read_scope
from domain.errors import UnauthorizedError
from hemisphere.http.authn import NOT_AUTHORIZED, Authenticator
from hemisphere.http.ports import Decision
from hemisphere.http.rate_limits import Throttle, retry_after_header
from hemisphere.http.telemetry import note_answer, note_operation
from projections.cached_reader import close_trace, open_trace
from projections.read_cache import ReadCache
from schema.errors import format_error, request_error
from schema.limits import QueryLimits, check_limits
from schema.operations import operation_selection_error, operation_type

log = logging.getLogger(__name__)

# AppSync refuses request bodies over 1 MB; we do the same rather than read or parse them.
MAX_BODY_BYTES = 1_048_576


def _json(payload: Any, status: int = 200) -> Response:
    note_answer(payload)
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


@dataclass(frozen=True, slots=True)
class _CachedAnswer:
    """A query's whole answer, kept in the read cache under (request body, caller's scope)."""

    body: bytes
    query: str
    operation_name: str | None


def _malformed(message: str) -> Response:
    return _json(request_error("MalformedHttpRequestException", message), status=400)


class GraphQLHTTP:
    def __init__(
        self,
        schema: strawberry.Schema,
        authenticator: Authenticator,
        make_context: Callable[[Caller], object],
        graphiql_html: Callable[[], str] | None,
        *,
        limits: QueryLimits | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        throttle: Callable[[], Throttle | None] = lambda: None,
        read_cache: Callable[[], ReadCache | None] = lambda: None,
    ) -> None:
        """`graphiql_html` makes the playground's page (None: no playground), per request
        since it may carry a fresh token; `throttle` gives the running app's rate limits
        (None: none) and `read_cache` its read cache (None: off), both known once its
        lifespan has started."""
        self._schema = schema
        self._authenticator = authenticator
        self._make_context = make_context
        self._graphiql_html = graphiql_html
        self._limits = limits or QueryLimits()
        self._max_body_bytes = max_body_bytes
        self._throttle = throttle
        self._read_cache = read_cache

    async def get(self, request: Request) -> Response:
        if self._graphiql_html is not None and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(self._graphiql_html())
        return _json(
            request_error(
                "MalformedHttpRequestException", "Send GraphQL requests as POST with a JSON body."
            ),
            status=405,
        )

    async def post(self, request: Request) -> Response:
        throttle = self._throttle()
        if throttle is not None:
            client = request.client.host if request.client else None
            refused = _throttled(await throttle.address(client))
            if refused is not None:
                return refused
        body = await self._read_body(request)
        if body is None:
            return _json(
                request_error(
                    "MalformedHttpRequestException",
                    f"The request body is larger than this API's limit of "
                    f"{self._max_body_bytes} bytes.",
                ),
                status=413,
            )
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        try:
            # The URL matters to a SigV4 signature only (an API key request has no
            # Authorization header): not rebuilt for every read.
            url = _signed_url(request, headers) if "authorization" in headers else ""
            caller = await self._authenticator.authenticate(
                method="POST", url=url, headers=headers, body=body
            )
        except UnauthorizedError as exc:
            # AppSync says the same thing for a missing and a wrong key: nothing to probe.
            message = exc.message if "authorization" in headers else NOT_AUTHORIZED
            return _json(request_error("UnauthorizedException", message), status=401)
        if throttle is not None:
            refused = _throttled(await throttle.caller(caller))
            if refused is not None:
                return refused

        cache = self._read_cache()
        answer_key = (body, read_scope(caller))
        if cache is not None:
            cached: _CachedAnswer | None = cache.entry(answer_key)
            if cached is not None:
                # The same request from a caller of the same scope, and nothing it was built
                # from has changed since (projections.read_cache).
                note_operation(cached.query, cached.operation_name)
                return Response(cached.body, media_type="application/json")

        if not body.strip():
            return _malformed('The request body is empty: send {"query": "..."}.')
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _malformed("Invalid JSON payload in POST request.")
        if not isinstance(payload, dict):
            return _malformed('The JSON payload must be an object with a "query" string.')
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if not isinstance(query, str) or not query.strip():
            return _malformed('The JSON payload has no "query" string.')
        if variables is not None and not isinstance(variables, dict):
            return _malformed('"variables" must be a JSON object.')
        if operation_name is not None and not isinstance(operation_name, str):
            return _malformed('"operationName" must be a string.')
        note_operation(query, operation_name)
        unselectable = operation_selection_error(query, operation_name)
        if unselectable is not None:
            return _json(request_error("BadRequestException", unselectable), status=400)
        exceeded = check_limits(
            self._schema._schema, query, operation_name, self._limits, variables
        )
        if exceeded is not None:
            # Refused before validation or execution: a cheap answer, whatever the document.
            return _json({"data": None, **request_error("ValidationError", exceeded.message)})

        trace, token = open_trace(cache) if cache is not None else (None, None)
        try:
            result = await self._schema.execute(
                query,
                variable_values=variables,
                context_value=self._make_context(caller),
                operation_name=operation_name,
            )
        finally:
            if token is not None:
                close_trace(token)
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(e) for e in result.errors]
            return _json(response)
        answer = orjson.dumps(response)
        if (
            cache is not None
            and trace is not None
            and trace.cacheable
            and operation_type(query, operation_name) == "query"
        ):
            # A tight copy: orjson's bytes keep a 4 KB buffer each, whatever their length,
            # and a cached answer lives long.
            answer = bytes(memoryview(answer))
            cache.put_entry(
                answer_key,
                _CachedAnswer(answer, query, operation_name),
                trace.tags,
                trace.since,
                size=len(body) + len(answer),
            )
        return Response(answer, media_type="application/json")

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None once it grows past the limit (never read whole into memory)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            return None
        # ASGI's receive directly: a small body comes in one message, and Starlette's stream
        # generator cost a read as much as the rest of a cached answer.
        chunks, size = [], 0
        while True:
            message = await request.receive()
            if message["type"] != "http.request":
                break  # the client went away: what came is all there is
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _throttled(decision: Decision) -> Response | None:
    if decision.allowed:
        return None
    wait = retry_after_header(decision)
    body = request_error("TooManyRequestsException", f"Rate exceeded: retry in {wait} s.")
    body["errors"][0]["errorInfo"] = {
        "retryable": True,
        "retryAfterSeconds": round(decision.retry_after_seconds, 3),
    }
    response = _json(body, status=429)
    response.headers["Retry-After"] = wait
    return response


def _signed_url(request: Request, headers: dict[str, str]) -> str:
    """The URL the client signed: its Host header, our path and query (the scheme is not part
    of a SigV4 signature, so a TLS-terminating proxy in front changes nothing)."""
    host = headers.get("host", "")
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    path = path.split("?", 1)[0]
    return f"http://{host}{path}" + (f"?{query}" if query else "")
