"""A tiny stand-in for a region's API, for the edge's tests: `/readyz` (503 after
`POST /test/unready`), `/graphql` over HTTP answering which region it is and what it received,
and WebSockets on `/graphql` and `/graphql/realtime` that greet with the region, the offered
subprotocols and the query, then echo. Run: `python -m tests.support.tiny_region NAME PORT`."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PROTOCOLS = ("graphql-transport-ws", "graphql-ws")


async def _first_chunk_then_die() -> AsyncIterator[bytes]:
    yield b'{"data": {"partial": '
    await asyncio.sleep(0.3)
    os._exit(1)


def build(name: str) -> Starlette:
    state = {"ready": True}

    async def readyz(request: Request) -> JSONResponse:
        if state["ready"]:
            return JSONResponse({"status": "ready", "region": name})
        return JSONResponse({"status": "draining", "region": name}, status_code=503)

    async def unready(request: Request) -> JSONResponse:
        state["ready"] = False
        return JSONResponse({"ready": False})

    async def graphql(request: Request) -> JSONResponse:
        body = await request.body()
        if request.query_params.get("hang"):  # a region that accepted and never answers
            await asyncio.sleep(3600)
        if request.query_params.get("die") == "before":  # the process dies mid-request
            os._exit(1)
        if request.query_params.get("die") == "during":  # … or mid-answer
            return StreamingResponse(_first_chunk_then_die(), media_type="application/json")
        return JSONResponse(
            {
                "data": {"region": name},
                "method": request.method,
                "query": request.url.query,
                "body": body.decode(),
                "host": request.headers.get("host"),
                "authorization": request.headers.get("authorization"),
            },
            headers={"x-upstream": name},
        )

    async def asset(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"asset {request.url.path} from {name}")

    async def websocket(socket: WebSocket) -> None:
        offered = list(socket.scope.get("subprotocols") or [])
        if socket.query_params.get("deny"):
            await socket.close(4403)
            return
        chosen = next((protocol for protocol in PROTOCOLS if protocol in offered), None)
        await socket.accept(subprotocol=chosen)
        await socket.send_json(
            {
                "region": name,
                "offered": offered,
                "query": socket.url.query,
                "api_key": socket.headers.get("x-api-key"),
            }
        )
        try:
            while True:
                message = await socket.receive_text()
                if message == "close-4000":
                    await socket.close(4000, "asked to")
                    return
                await socket.send_text(message)
        except WebSocketDisconnect:
            pass

    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/test/unready", unready, methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/static/{path:path}", asset),
            WebSocketRoute("/graphql", websocket),
            WebSocketRoute("/graphql/realtime", websocket),
        ]
    )


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.2)
    os._exit(0)


if __name__ == "__main__":
    region, port = sys.argv[1], int(sys.argv[2])
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    uvicorn.run(build(region), host="127.0.0.1", port=port, log_level="warning")
