"""Authorization of subscriptions is the queries': a subscription field the caller's mode may
not read is refused at `start`, a field of a change it may not read is null with an error, and
a filter on such a field is refused (it would reveal the value). The contract lets every
authenticated mode read everything, so a schema with IAM-only fields shows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry

from domain.auth import AuthMode, Caller
from resolvers.context import Context
from resolvers.schema import AppSyncSchema
from schema.auth import RequireAuthModes, field_auth
from schema.types import PUBLIC
from schema.values import OMITTED, given
from subscriptions.appsync_session import AppSyncSession
from subscriptions.delivery import SubscriptionInfo, changes
from subscriptions.inprocess import InProcessBroker
from tests.support.app import TOKENS, fake_runtime
from tests.support.fakes import InMemoryReader

_IAM_ONLY = field_auth(AuthMode.AWS_IAM)


@dataclass(frozen=True)
class Vault:
    id: str
    label: str
    secret: str


@strawberry.type(name="Vault", directives=PUBLIC)
class VaultType:
    id: strawberry.ID
    label: str
    secret: str = strawberry.field(directives=_IAM_ONLY.directives, extensions=_IAM_ONLY.extensions)


def _vault(plain: Mapping[str, Any]) -> Vault:
    return Vault(plain["id"], plain["label"], plain["secret"])


@strawberry.type
class Query:
    ping: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=[RequireAuthModes(frozenset({AuthMode.API_KEY, AuthMode.AWS_IAM}))]
    )
    async def on_vault(
        self, info: SubscriptionInfo, id: strawberry.ID | None = OMITTED
    ) -> AsyncGenerator[VaultType | None, None]:
        return await changes(info, "publishVault", {"id": given(id)}, _vault, VaultType)

    @strawberry.subscription(extensions=[RequireAuthModes(frozenset({AuthMode.AWS_IAM}))])
    async def on_vault_for_iam(
        self, info: SubscriptionInfo
    ) -> AsyncGenerator[VaultType | None, None]:
        return await changes(info, "publishVault", {}, _vault, VaultType)


# AppSync's error handling (named errors are answers, not incidents), as the real schema has.
SCHEMA = AppSyncSchema(query=Query, subscription=Subscription)


class Connection:
    """An AppSync session whose `start` authorization names the caller's mode directly."""

    def __init__(self, broker: InProcessBroker) -> None:
        runtime = fake_runtime(InMemoryReader(), broker)
        self.sent: list[dict[str, Any]] = []
        self.session = AppSyncSession(
            schema=SCHEMA,
            make_context=lambda caller: Context(caller, runtime.ports, TOKENS),
            authorize=self._authorize,
            send=lambda text: self.sent.append(json.loads(text)),
            on_stream_end=lambda id: None,
        )

    @staticmethod
    async def _authorize(headers: Mapping[str, str], data: str) -> Caller:
        return Caller(AuthMode(headers["mode"]), "tester")

    async def start(self, id: str, query: str, mode: AuthMode, **extensions: Any) -> dict[str, Any]:
        await self.session.receive('{"type": "connection_init"}')
        payload = {
            "data": json.dumps({"query": query}),
            "extensions": {"authorization": {"mode": mode.value}, **extensions},
        }
        await self.session.receive(json.dumps({"type": "start", "id": id, "payload": payload}))
        return await self.next()

    async def next(self) -> dict[str, Any]:
        for _ in range(200):
            while self.sent:
                message = self.sent.pop(0)
                if message["type"] not in ("connection_ack", "ka"):
                    return message
            await asyncio.sleep(0.005)
        raise AssertionError("no message")


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()


@pytest.fixture
async def connections(broker: InProcessBroker) -> AsyncIterator[Callable[[], Connection]]:
    opened: list[Connection] = []

    def connect() -> Connection:
        opened.append(Connection(broker))
        return opened[-1]

    yield connect
    for connection in opened:
        await connection.session.close()


async def test_a_field_the_caller_may_not_read_is_null_with_an_error(
    broker: InProcessBroker, connections: Callable[[], Connection]
) -> None:
    api_key, iam = connections(), connections()
    query = "subscription { onVault { id label secret } }"
    assert (await api_key.start("1", query, AuthMode.API_KEY))["type"] == "start_ack"
    assert (await iam.start("1", query, AuthMode.AWS_IAM))["type"] == "start_ack"
    await broker.publish(
        "publishVault", {"id": "v-1", "label": "ours", "secret": "42", "version": 1}
    )
    refused = await api_key.next()
    assert refused["payload"]["data"] == {"onVault": None}  # secret is non-null: null spreads
    [error] = refused["payload"]["errors"]
    assert error["errorType"] == "Unauthorized"
    assert error["message"] == "Not Authorized to access secret on type Vault"
    granted = await iam.next()
    assert granted["payload"] == {
        "data": {"onVault": {"id": "v-1", "label": "ours", "secret": "42"}}
    }


async def test_a_subscription_field_the_caller_may_not_read_is_refused(
    broker: InProcessBroker, connections: Callable[[], Connection]
) -> None:
    connection = connections()
    reply = await connection.start("1", "subscription { onVaultForIam { id } }", AuthMode.API_KEY)
    assert reply["type"] == "error" and reply["id"] == "1"
    assert reply["payload"]["errors"][0]["errorType"] == "Unauthorized"
    assert broker.subscriber_count("publishVault") == 0


async def test_a_filter_on_a_field_the_caller_may_not_read_is_refused(
    connections: Callable[[], Connection],
) -> None:
    secret_filter = {
        "filterGroup": [
            {"filters": [{"fieldName": "secret", "operator": "beginsWith", "value": "4"}]}
        ]
    }
    query = "subscription { onVault { id label } }"
    refused = await connections().start("1", query, AuthMode.API_KEY, filter=secret_filter)
    assert refused["type"] == "error"
    assert refused["payload"]["errors"][0]["message"] == (
        "Not Authorized to access secret on type Vault"
    )
    allowed = await connections().start("1", query, AuthMode.AWS_IAM, filter=secret_filter)
    assert allowed["type"] == "start_ack"
