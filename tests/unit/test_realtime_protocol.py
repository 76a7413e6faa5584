"""AppSync's real-time messages: parsing what clients send, building what the server answers."""

from __future__ import annotations

import base64
import json

import pytest

from subscriptions import appsync_protocol as protocol

QUERY = "subscription { onOrderChanged { id } }"
AUTH = {"host": "example.com", "x-api-key": "da2-key"}


def start(payload: object, id: object = "1") -> str:
    return json.dumps({"type": "start", "id": id, "payload": payload})


def test_start_carries_the_request_as_a_json_string_and_its_authorization() -> None:
    data = json.dumps({"query": QUERY, "variables": {"c": "c-1"}, "operationName": None})
    message = protocol.parse_client_message(
        start({"data": data, "extensions": {"authorization": AUTH}})
    )
    assert message == protocol.Start(
        id="1",
        data=data,
        query=QUERY,
        variables={"c": "c-1"},
        operation_name=None,
        authorization=AUTH,
        filters=(),
    )


def test_filters_come_from_the_start_extensions_and_the_request_extensions() -> None:
    outer, inner = {"filterGroup": ["outer"]}, {"filterGroup": ["inner"]}
    data = json.dumps({"query": QUERY, "extensions": {"filter": inner}})
    message = protocol.parse_client_message(
        start({"data": data, "extensions": {"authorization": AUTH, "filter": outer}})
    )
    assert isinstance(message, protocol.Start) and message.filters == (outer, inner)


def test_connection_init_and_stop() -> None:
    assert protocol.parse_client_message('{"type": "connection_init"}') == protocol.ConnectionInit()
    assert protocol.parse_client_message('{"type": "stop", "id": "7"}') == protocol.Stop("7")


@pytest.mark.parametrize(
    ("text", "message", "id"),
    [
        ("{not json", "not valid JSON", None),
        ("[]", "JSON object", None),
        ('{"type": "stop"}', 'needs an "id"', None),
        ('{"type": "stop", "id": 1}', '"id" must be a string', None),
        ('{"type": "subscribe", "id": "1"}', "Unknown message type 'subscribe'", "1"),
        (start({"data": {"query": QUERY}}), "JSON string", "1"),
        (start({"data": "{"}), "not valid JSON", "1"),
        (start({"data": json.dumps({"variables": {}})}), '"query" string', "1"),
        (start({"data": json.dumps({"query": QUERY, "variables": []})}), '"variables"', "1"),
        (
            start({"data": json.dumps({"query": QUERY}), "extensions": {"authorization": "k"}}),
            "object of strings",
            "1",
        ),
    ],
)
def test_malformed_messages(text: str, message: str, id: str | None) -> None:
    with pytest.raises(protocol.ProtocolError, match=message) as raised:
        protocol.parse_client_message(text)
    assert raised.value.id == id


def test_a_message_over_240_kb_is_refused_with_its_id() -> None:
    data = json.dumps({"query": QUERY, "variables": {"pad": "x" * protocol.MAX_PAYLOAD_BYTES}})
    with pytest.raises(protocol.ProtocolError, match="larger than 245760 bytes") as raised:
        protocol.parse_client_message(start({"data": data}, id="big"))
    assert raised.value.id == "big"


def test_headers_decode_from_base64_and_base64url_with_or_without_padding() -> None:
    raw = json.dumps({"Host": "h:1", "X-Api-Key": "k?>"}).encode()
    expected = {"host": "h:1", "x-api-key": "k?>"}
    assert protocol.decode_header(base64.b64encode(raw).decode()) == expected
    url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert protocol.decode_header(url_safe) == expected
    offered = ["graphql-ws", f"header-{url_safe}"]
    assert protocol.header_subprotocol(offered) == url_safe
    assert protocol.header_subprotocol(["graphql-ws"]) is None


@pytest.mark.parametrize("encoded", ["%%%", base64.b64encode(b"[1]").decode(), "e30"])
def test_headers_that_are_not_an_object_of_strings(encoded: str) -> None:
    if encoded == "e30":  # `{}` is an object, and an empty one is fine
        assert protocol.decode_header(encoded) == {}
        return
    with pytest.raises(ValueError):
        protocol.decode_header(encoded)


def test_payload_defaults_to_the_empty_object() -> None:
    assert protocol.decode_payload(None) == b"{}"
    assert protocol.decode_payload("e30=") == b"{}"


def test_server_messages() -> None:
    assert protocol.connection_ack() == {
        "type": "connection_ack",
        "payload": {"connectionTimeoutMs": 300_000},
    }
    assert protocol.keep_alive() == {"type": "ka"}
    assert protocol.start_ack("1") == {"type": "start_ack", "id": "1"}
    assert protocol.data("1", {"data": {"x": 1}}) == {
        "type": "data",
        "id": "1",
        "payload": {"data": {"x": 1}},
    }
    assert protocol.complete("1") == {"type": "complete", "id": "1"}
    assert protocol.simple_error("1", "BadRequestException", "no") == {
        "type": "error",
        "id": "1",
        "payload": {
            "errors": [{"errorType": "BadRequestException", "message": "no", "errorCode": 400}]
        },
    }
    assert protocol.connection_error("UnauthorizedException", "no", 401) == {
        "type": "connection_error",
        "payload": {
            "errors": [{"errorType": "UnauthorizedException", "message": "no", "errorCode": 401}]
        },
    }
