"""The drill's shopper against a scripted GraphQL server (aiohttp): a checkout that may pass is
sent again with the same idempotencyKey every RETRY_S until it is answered for good; one that
was refused for good is not; an acknowledged order is recorded once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from hemisphere.drill.records import Acknowledged, Request
from hemisphere.drill.users import RETRY_S, retryable, shopper
from hemisphere.local_issuer import CustomerTokens, LocalIssuer
from tests.support.drill_users import target_of


def _error(error_type: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"errorType": error_type, "message": error_type}]}


class ScriptedApi:
    """Answers each checkout with the next answer of `script`, then with an order."""

    def __init__(self, script: list[dict[str, Any] | int]) -> None:
        self.script = script
        self.keys: list[str] = []

    async def graphql(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.keys.append(body["variables"]["input"]["idempotencyKey"])
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, int):
                return web.Response(status=answer, text="bad gateway")
            return web.json_response(answer)
        order = {"id": f"o-{len(self.keys)}", "status": "PENDING"}
        return web.json_response({"data": {"checkout": order}})


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[CustomerTokens]:
    yield CustomerTokens(LocalIssuer(tmp_path, "http://127.0.0.1:1/issuer"))


async def _shop(
    api: ScriptedApi, tokens: CustomerTokens, seconds: float
) -> tuple[list[Request], list[Acknowledged]]:
    requests: list[Request] = []
    acknowledged: list[Acknowledged] = []
    async with target_of(api.graphql, tokens, requests, acknowledged) as target:
        task = asyncio.create_task(shopper(target, seed=1, interval_s=60.0))
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return requests, acknowledged


async def test_a_read_only_answer_is_retried_with_the_same_key(tokens: CustomerTokens) -> None:
    api = ScriptedApi([_error("ReadOnlyRegion"), 502, _error("ServiceUnavailable")])
    requests, acknowledged = await _shop(api, tokens, 4 * RETRY_S)
    # Three answers that may pass, then the order: one order, one key, four sends.
    assert len(api.keys) == 4 and len(set(api.keys)) == 1
    assert [r.error for r in requests] == ["ReadOnlyRegion", "HTTP 502", "ServiceUnavailable", None]
    assert [a.order_id for a in acknowledged] == ["o-4"]
    gaps = [b.started - a.ended for a, b in itertools.pairwise(requests)]
    assert all(gap >= RETRY_S * 0.9 for gap in gaps)


async def test_a_refusal_for_good_is_not_sent_again(tokens: CustomerTokens) -> None:
    api = ScriptedApi([_error("ValidationError")])
    requests, acknowledged = await _shop(api, tokens, 3 * RETRY_S)
    # The shopper waits for its next order (60 s away): nothing else was sent.
    assert [r.error for r in requests] == ["ValidationError"]
    assert acknowledged == []


def test_what_a_client_retries() -> None:
    may_pass = ["ReadOnlyRegion", "ServiceUnavailable", "ThrottlingException", "Timeout"]
    may_pass += ["ClientConnectorError", "ServerDisconnectedError", "HTTP 502", "HTTP 503"]
    for error in may_pass:
        assert retryable(error), error
    refused = ["ValidationError", "GraphQLError", "IdempotencyConflict", "HTTP 400"]
    refused += ["Unauthorized", "BadRequestException"]
    for error in refused:
        assert not retryable(error), error
    assert not retryable(None)  # answered: nothing to retry
