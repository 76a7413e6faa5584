"""A POST /graphql as an ASGI call, with no server and no HTTP client: what the in-process
benches (hit_path.py, checkout_cpu.py) send, so that their process's CPU is the app's."""

from __future__ import annotations

from typing import Any


def graphql_post_scope(body: bytes, auth: tuple[bytes, bytes]) -> dict[str, Any]:
    """The ASGI scope of a POST /graphql carrying `body`, authenticated by the header `auth`
    (x-api-key or authorization)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            auth,
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def post(app: Any, scope: dict[str, Any], body: bytes) -> bytes:
    """Call `app` with a copy of `scope` and `body`; the response body."""
    answer: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return b"".join(answer)
