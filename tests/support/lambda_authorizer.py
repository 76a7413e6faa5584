"""A real Lambda authorizer for tests: a small Starlette app on a port of its own, answering
AppSync's authorizer request both as a plain HTTP endpoint (POST /authorize, what
HEMISPHERE_LAMBDA_AUTHORIZER_URL names) and as the Lambda Invoke API
(POST /2015-03-31/functions/NAME/invocations, where aiobotocore's lambda client sends
`Invoke` when its endpoint is this server). It answers each token as `answers` says, and
keeps every request it got."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hemisphere.localstack import free_port

# Answers that are not JSON objects: the authorizer crashes, or sends something unreadable.
CRASH = "crash"
GARBAGE = "garbage"


@dataclass
class StandIn:
    answers: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # The paths the Invoke API was called on (they name the function).
    invoked: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/authorize"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, token: str) -> int:
        return sum(1 for r in self.requests if r["authorizationToken"] == token)

    def _answer(self, request: dict[str, Any]) -> Any:
        self.requests.append(request)
        return self.answers.get(request["authorizationToken"], {"isAuthorized": False})


def _app(stand_in: StandIn) -> Starlette:
    async def authorize(request: Request) -> Response:
        answer = stand_in._answer(orjson.loads(await request.body()))
        if answer == CRASH:
            return Response("internal error", status_code=500)
        if answer == GARBAGE:
            return Response("<html>not json</html>", media_type="text/html")
        return Response(orjson.dumps(answer), media_type="application/json")

    async def invoke(request: Request) -> Response:
        # As Lambda answers a RequestResponse invocation: 200 and the function's result; a
        # function that raised is still a 200, marked by X-Amz-Function-Error.
        stand_in.invoked.append(request.url.path)
        answer = stand_in._answer(orjson.loads(await request.body()))
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if answer == CRASH:
            headers["X-Amz-Function-Error"] = "Unhandled"
            answer = {"errorMessage": "boom", "errorType": "Error"}
        body = b"not json" if answer == GARBAGE else orjson.dumps(answer)
        return Response(body, media_type="application/json", headers=headers)

    return Starlette(
        routes=[
            Route("/authorize", authorize, methods=["POST"]),
            Route("/2015-03-31/functions/{name}/invocations", invoke, methods=["POST"]),
        ]
    )


@contextlib.contextmanager
def running_authorizer(answers: dict[str, Any] | None = None) -> Iterator[StandIn]:
    stand_in = StandIn(dict(answers or {}), port=free_port())
    server = uvicorn.Server(
        uvicorn.Config(_app(stand_in), host="127.0.0.1", port=stand_in.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the authorizer did not start"
        time.sleep(0.02)
    try:
        yield stand_in
    finally:
        server.should_exit = True
        thread.join(10)
