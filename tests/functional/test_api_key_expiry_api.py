"""An expired API key over HTTP and AppSync's real-time protocol: refused exactly as an unknown
key is, while the key that replaced it (rotation: both configured) works."""

from __future__ import annotations

import time

from hemisphere.app import create_app
from tests.functional.test_realtime_appsync import AsgiWebSocket, appsync_query, connect
from tests.support.app import client_for, fake_runtime, runtime_factory, with_settings
from tests.support.fakes import InMemoryReader

OLD, NEW = "da2-oldoldoldoldoldoldoldold", "da2-newnewnewnewnewnewnewnew"
UNKNOWN = "da2-unknownunknownunknownunk"


async def test_an_expired_key_is_refused_like_an_unknown_one_and_the_new_one_works() -> None:
    settings = with_settings(api_keys=(OLD, NEW), api_key_expiry={OLD: time.time() - 60})
    app = create_app(settings, runtime_factory=runtime_factory(fake_runtime(InMemoryReader())))
    body = {"query": "{ region { region } }"}
    async with client_for(app) as client:
        answers = {
            key: await client.post("/graphql", json=body, headers={"x-api-key": key})
            for key in (OLD, NEW, UNKNOWN)
        }
        replies = {}
        for key in (OLD, NEW):
            header = {"host": "testserver", "x-api-key": key}
            async with AsgiWebSocket(
                app,
                "/graphql/realtime",
                query=appsync_query(header),
                subprotocols=["graphql-ws"],
            ) as ws:
                replies[key] = (await connect(ws))["type"]
    assert answers[NEW].status_code == 200
    assert answers[NEW].json()["data"] == {"region": {"region": "us-east-1"}}
    assert answers[OLD].status_code == answers[UNKNOWN].status_code == 401
    assert answers[OLD].json() == answers[UNKNOWN].json()
    assert answers[OLD].json()["errors"][0]["errorType"] == "UnauthorizedException"
    assert replies == {OLD: "connection_error", NEW: "connection_ack"}
