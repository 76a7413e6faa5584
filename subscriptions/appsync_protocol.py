"""AppSync's real-time WebSocket protocol, as messages: what a client may send, what the
server answers. Pure: no sockets, no clock (hemisphere/http/realtime.py does the I/O,
subscriptions/appsync_session.py the state).

    client                                   server
    (upgrade: subprotocol graphql-ws; auth in ?header=<base64 JSON> or a
     `header-<base64url JSON>` subprotocol)
    {"type": "connection_init"}          →
                                         ←   {"type": "connection_ack",
                                              "payload": {"connectionTimeoutMs": 300000}}
                                         ←   {"type": "ka"}  (every keep-alive interval)
    {"type": "start", "id": "1",         →
     "payload": {"data": "{\"query\": …, \"variables\": …}",
                 "extensions": {"authorization": {…}, "filter": {…}}}}
                                         ←   {"type": "start_ack", "id": "1"}
                                         ←   {"type": "data", "id": "1",
                                              "payload": {"data": {…}}}
    {"type": "stop", "id": "1"}          →
                                         ←   {"type": "complete", "id": "1"}

Errors: `{"type": "error", "id": …, "payload": {"errors": [{"errorType", "message"}]}}` for a
subscription that cannot start; `connection_error` (same payload) for a connection whose
credentials are refused, after which the server closes it.

Hemisphere's extension: an enhanced filter (subscriptions/filters.py) may ride in
`payload.extensions.filter` of `start`, or in the `extensions` of the request inside
`payload.data` (where a GraphQL client puts a request's extensions); both apply.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from schema.operations import operation_selection_error

SUBPROTOCOL = "graphql-ws"
HEADER_SUBPROTOCOL_PREFIX = "header-"
# What AppSync announces: a client that hears nothing (not even `ka`) for this long reconnects.
CONNECTION_TIMEOUT_MS = 300_000
# AppSync's limits for a real-time connection.
MAX_SUBSCRIPTIONS = 100
MAX_PAYLOAD_BYTES = 240 * 1024

Json = dict[str, Any]


class ProtocolError(Exception):
    """A client message the protocol cannot take; answered with an `error` message."""

    def __init__(self, error_type: str, message: str, id: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.id = id


@dataclass(frozen=True, slots=True)
class ConnectionInit:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    id: str
    # The request as the client serialized it: an IAM signature covers these exact bytes.
    data: str
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    authorization: dict[str, str] | None
    # Enhanced filters from payload.extensions.filter and from the request's extensions.
    filters: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Stop:
    id: str


ClientMessage = ConnectionInit | Start | Stop


def parse_client_message(text: str) -> ClientMessage:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("BadRequestException", "The message is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("BadRequestException", "A message is a JSON object.")
    kind, id = message.get("type"), message.get("id")
    if id is not None and not isinstance(id, str):
        raise ProtocolError("BadRequestException", '"id" must be a string.')
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            "BadRequestException", f"The message is larger than {MAX_PAYLOAD_BYTES} bytes.", id
        )
    if kind == "connection_init":
        return ConnectionInit()
    if kind in ("start", "stop") and not id:
        raise ProtocolError("BadRequestException", f'A "{kind}" message needs an "id".')
    if kind == "stop":
        assert id is not None
        return Stop(id)
    if kind == "start":
        assert id is not None
        return _start(id, message.get("payload"))
    raise ProtocolError("UnsupportedOperation", f"Unknown message type {kind!r}.", id)


def _start(id: str, payload: object) -> Start:
    def bad(message: str) -> ProtocolError:
        return ProtocolError("BadRequestException", message, id)

    if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
        raise bad('"payload.data" must be the request as a JSON string.')
    data: str = payload["data"]
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise bad('"payload.data" is not valid JSON.') from None
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        raise bad('"payload.data" must hold a "query" string.')
    variables, operation_name = request.get("variables"), request.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        raise bad('"variables" must be a JSON object.')
    if operation_name is not None and not isinstance(operation_name, str):
        raise bad('"operationName" must be a string.')
    unselectable = operation_selection_error(request["query"], operation_name)
    if unselectable is not None:
        raise bad(unselectable)
    extensions = payload.get("extensions") or {}
    request_extensions = request.get("extensions") or {}
    if not isinstance(extensions, dict) or not isinstance(request_extensions, dict):
        raise bad('"extensions" must be a JSON object.')
    authorization = extensions.get("authorization")
    if authorization is not None and not _is_headers(authorization):
        raise bad('"payload.extensions.authorization" must be an object of strings.')
    filters = tuple(
        f for f in (extensions.get("filter"), request_extensions.get("filter")) if f is not None
    )
    return Start(
        id=id,
        data=data,
        query=request["query"],
        variables=variables,
        operation_name=operation_name,
        authorization=authorization,
        filters=filters,
    )


def _is_headers(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def decode_header(encoded: str) -> dict[str, str]:
    """The auth headers of a connection, from the `header` query parameter (base64) or a
    `header-` subprotocol (base64url, unpadded); ValueError when they are not that."""
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        headers = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValueError("the header is not base64-encoded JSON") from exc
    if not _is_headers(headers):
        raise ValueError("the header must be a JSON object of strings")
    return {name.lower(): value for name, value in headers.items()}


def decode_payload(encoded: str | None) -> bytes:
    """The connection payload (`?payload=`) an IAM client signed: `{}` when absent."""
    if not encoded:
        return b"{}"
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("the payload is not base64") from exc


def header_subprotocol(offered: list[str]) -> str | None:
    """The encoded headers of a `header-…` subprotocol, if the client offered one."""
    for protocol in offered:
        if protocol.startswith(HEADER_SUBPROTOCOL_PREFIX):
            return protocol[len(HEADER_SUBPROTOCOL_PREFIX) :]
    return None


def _error_entries(error_type: str, message: str, code: int | None) -> list[Json]:
    entry: Json = {"errorType": error_type, "message": message}
    if code is not None:
        entry["errorCode"] = code
    return [entry]


def connection_ack() -> Json:
    return {"type": "connection_ack", "payload": {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}}


def keep_alive() -> Json:
    return {"type": "ka"}


def start_ack(id: str) -> Json:
    return {"type": "start_ack", "id": id}


def data(id: str, result: Json) -> Json:
    return {"type": "data", "id": id, "payload": result}


def complete(id: str) -> Json:
    return {"type": "complete", "id": id}


def error(id: str | None, errors: list[Json]) -> Json:
    message: Json = {"type": "error", "payload": {"errors": errors}}
    if id is not None:
        message["id"] = id
    return message


def simple_error(id: str | None, error_type: str, message: str, code: int = 400) -> Json:
    return error(id, _error_entries(error_type, message, code))


def connection_error(error_type: str, message: str, code: int) -> Json:
    # Amplify reads payload.errors[0].errorType/errorCode and does not retry 401s.
    errors = _error_entries(error_type, message, code)
    return {"type": "connection_error", "payload": {"errors": errors}}
