"""The local endpoint keeps its connections (hemisphere/moto/request_overhead.py): requests
one after the other on one connection are each answered in full, whatever the body the
application left unread, and a chunked request body still ends its connection."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

# A request moto answers with an error without reading its body: the bytes must not be taken
# for the next request line.
UNREAD = b"x" * 70_000


def _connection(aws_endpoint: str) -> http.client.HTTPConnection:
    url = urlsplit(aws_endpoint)
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)


def _list_tables(connection: http.client.HTTPConnection) -> dict[str, object]:
    body = b"{}"
    connection.request(
        "POST",
        "/",
        body=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=x",
        },
    )
    answer = connection.getresponse()
    assert answer.status == 200
    assert answer.getheader("Connection") != "close"
    parsed: dict[str, object] = json.loads(answer.read())
    return parsed


def test_one_connection_serves_request_after_request(aws_endpoint: str) -> None:
    connection = _connection(aws_endpoint)
    try:
        _list_tables(connection)
        sock = connection.sock
        for _ in range(20):
            assert "TableNames" in _list_tables(connection)
        assert connection.sock is sock  # the same TCP connection all along
    finally:
        connection.close()


def test_a_body_left_unread_is_drained_before_the_next_request(aws_endpoint: str) -> None:
    connection = _connection(aws_endpoint)
    try:
        connection.request("POST", "/moto-api/no-such-thing", body=UNREAD)
        answer = connection.getresponse()
        answer.read()
        assert answer.status >= 400
        sock = connection.sock
        assert "TableNames" in _list_tables(connection)
        assert connection.sock is sock
    finally:
        connection.close()


def test_a_chunked_request_body_closes_its_connection(aws_endpoint: str) -> None:
    connection = _connection(aws_endpoint)
    try:
        connection.request(
            "POST",
            "/",
            body=iter([b"{", b"}"]),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                "dynamodb/aws4_request, SignedHeaders=host, Signature=x",
            },
            encode_chunked=True,
        )
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
        assert answer.getheader("Connection") == "close"
    finally:
        connection.close()
