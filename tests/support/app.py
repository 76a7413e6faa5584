"""Run the ASGI app in-process, lifespan included, with fake or real runtimes."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette

from hemisphere.local_issuer import LocalIssuer
from hemisphere.runtime import Runtime
from hemisphere.settings import Settings
from resolvers.context import Ports, Topology
from resolvers.pagination import PageTokens
from resolvers.ports import OrderWorkflows, ProfileUpdates
from subscriptions.inprocess import InProcessBroker
from subscriptions.ports import Broker
from tests.support.fakes import (
    AlwaysWritable,
    FakeProfileUpdates,
    FakeWorkflows,
    InMemoryCatalog,
    InMemoryReader,
)

API_KEY = "da2-testtesttesttesttesttestte"
IAM_AKID = "AKIATESTHEMISPHERE"
IAM_SECRET = "test-secret-for-sigv4-signatures"

# Contract v2 puts customer data behind an identity: every test app accepts tokens from a
# development issuer (its key made once per test process, in a directory of its own).
_ISSUER_DIR = Path(tempfile.mkdtemp(prefix="hemisphere-test-issuer-"))
atexit.register(shutil.rmtree, _ISSUER_DIR, True)
ISSUER_URL = "http://testserver"
ISSUER = LocalIssuer(_ISSUER_DIR, ISSUER_URL)

SETTINGS = Settings(
    api_keys=(API_KEY,),
    iam_credentials={IAM_AKID: IAM_SECRET},
    token_secret="test-token-secret",
    region="us-east-1",
    primary_region="us-east-1",
    data_dir=_ISSUER_DIR,
    oidc_issuer=ISSUER_URL,
    local_issuer=True,
)
# The page tokens of an app made with SETTINGS, for a context made by hand.
TOKENS = PageTokens(SETTINGS.token_secret or "")


def token_headers(
    customer_id: str = "c-0001", groups: Sequence[str] = (), *, user_pool: bool = False
) -> dict[str, str]:
    """The headers of a token caller speaking for `customer_id`: OPENID_CONNECT, or with
    `user_pool` AMAZON_COGNITO_USER_POOLS (the issuer's user pool, with `groups`)."""
    return {"authorization": ISSUER.token(customer_id, groups, user_pool=user_pool)}


def fake_runtime(
    reader: InMemoryReader,
    broker: Broker | None = None,
    workflows: OrderWorkflows | None = None,
    profiles: ProfileUpdates | None = None,
) -> Runtime:
    return Runtime(
        ports=Ports(
            reader=reader,
            broker=broker or InProcessBroker(),
            topology=Topology("us-east-1", "us-east-1"),
            catalog=InMemoryCatalog(reader),
            workflows=workflows or FakeWorkflows(),
            profiles=profiles or FakeProfileUpdates(),
            writes=AlwaysWritable(),
        )
    )


def runtime_factory(runtime: Runtime) -> Any:
    @contextlib.asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[Runtime]:
        yield runtime

    return factory


@contextlib.asynccontextmanager
async def client_for(
    app: Starlette, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client


def sigv4_headers(
    url: str,
    body: bytes,
    *,
    secret: str = IAM_SECRET,
    akid: str = IAM_AKID,
    region: str = "us-east-1",
) -> dict[str, str]:
    """Headers of a request signed as AppSync clients sign (service `appsync`)."""
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials(akid, secret), "appsync", region).add_auth(request)
    return dict(request.headers.items())


def with_settings(**changes: Any) -> Settings:
    return replace(SETTINGS, **changes)
