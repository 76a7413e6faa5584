"""OPENID_CONNECT callers over HTTP and AppSync's real-time protocol, with the development
issuer serve runs: its discovery documents, its tokens accepted, anything else a 401."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from starlette.applications import Starlette

from hemisphere.app import create_app
from hemisphere.cli import main
from hemisphere.local_issuer import LocalIssuer
from tests.functional.test_realtime_appsync import AsgiWebSocket, connect
from tests.support.app import client_for, fake_runtime, runtime_factory, with_settings
from tests.support.fakes import InMemoryReader, make_customer

ISSUER = "http://testserver"


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    issuer = LocalIssuer(tmp_path, ISSUER)
    issuer.remember(tmp_path)
    return issuer


@pytest.fixture
async def app(tmp_path: Path, issuer: LocalIssuer) -> AsyncIterator[Starlette]:
    settings = with_settings(data_dir=tmp_path, oidc_issuer=ISSUER, local_issuer=True)
    reader = InMemoryReader(customers=[make_customer(1)])
    yield create_app(settings, runtime_factory=runtime_factory(fake_runtime(reader)))


async def test_the_issuer_publishes_its_keys(app: Starlette, issuer: LocalIssuer) -> None:
    async with client_for(app) as client:
        configuration = (await client.get("/.well-known/openid-configuration")).json()
        keys = (await client.get("/.well-known/jwks.json")).json()
    assert configuration["issuer"] == ISSUER
    assert configuration["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert keys == issuer.jwks()


async def test_a_token_caller_reads_over_http(app: Starlette, issuer: LocalIssuer) -> None:
    body = {"query": '{ customer(id: "c-0001") { id } }'}
    async with client_for(app) as client:
        ok = await client.post(
            "/graphql", json=body, headers={"authorization": issuer.token("c-0001")}
        )
        expired = await client.post(
            "/graphql", json=body, headers={"authorization": issuer.token("c-0001", seconds=-60)}
        )
        bearer = await client.post(
            "/graphql", json=body, headers={"authorization": "Bearer " + issuer.token("c-0001")}
        )
    assert ok.status_code == 200 and ok.json()["data"] == {"customer": {"id": "c-0001"}}
    assert bearer.status_code == 200
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["errorType"] == "UnauthorizedException"


async def test_a_token_caller_connects_over_appsync_realtime(
    app: Starlette, issuer: LocalIssuer
) -> None:
    for token, expected in (
        (issuer.token("c-0001"), "connection_ack"),
        ("x.y.z", "connection_error"),
    ):
        header = base64.b64encode(
            json.dumps({"host": "testserver", "Authorization": token}).encode()
        ).decode()
        async with (
            client_for(app),
            AsgiWebSocket(
                app,
                "/graphql/realtime",
                subprotocols=["graphql-ws"],
                query=f"header={header}&payload=e30=",
            ) as ws,
        ):
            assert (await connect(ws))["type"] == expected


def test_hemisphere_token_prints_one_for_a_demo_customer(
    tmp_path: Path, issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "c-0003", "--groups", "admins", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "c-0003" and claims["cognito:groups"] == ["admins"]
    # Groups are Cognito's: with them the token is the issuer's user pool's.
    assert claims["iss"] == ISSUER + "/userpool" and claims["token_use"] == "id"
    assert main(["token", "c-0003", "--data-dir", str(tmp_path)]) == 0
    oidc = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert oidc["iss"] == ISSUER and "token_use" not in oidc
    assert main(["token", "c-0003", "--data-dir", str(tmp_path / "nothing-here")]) == 2
