"""One GraphQL request as a simulated user sends it, and what the user saw: data, or the
AppSync errorType of the first error, or the transport failure (a refused connection, a
timeout, an HTTP status the edge answered with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

Json = dict[str, Any]
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    data: Json | None
    error: str | None


def client(api_key: str, timeout: float = REQUEST_TIMEOUT_S) -> httpx.AsyncClient:
    """A user's HTTP client: keep-alive connections, as a browser or SDK keeps them."""
    return httpx.AsyncClient(
        headers={"x-api-key": api_key, "content-type": "application/json"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
    )


async def execute(
    http: httpx.AsyncClient,
    url: str,
    query: str,
    variables: Json | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """`headers`: added to the client's for this request (a customer's `authorization`,
    which the API prefers to the client's API key)."""
    try:
        response = await http.post(
            url, json={"query": query, "variables": variables or {}}, headers=headers
        )
    except httpx.TimeoutException:
        return Answer(None, "Timeout")
    except httpx.HTTPError as error:
        return Answer(None, type(error).__name__)
    return classify(response.status_code, response.content)


def classify(status_code: int, body: bytes) -> Answer:
    """What the user saw in one HTTP answer (pure)."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("errors"):
        first = document["errors"][0] if isinstance(document["errors"], list) else {}
        error_type = first.get("errorType") if isinstance(first, dict) else None
        return Answer(document.get("data"), str(error_type or "GraphQLError"))
    if status_code != 200 or not isinstance(document, dict):
        return Answer(None, f"HTTP {status_code}")
    data = document.get("data")
    return Answer(data if isinstance(data, dict) else None, None)
