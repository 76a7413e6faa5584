"""AWS_LAMBDA authorization without a network: the answer's checks and normalization, and the
authorizer's cache (by token, TTL, ttlOverride, bounded), token checks and failures, against an
in-memory authorizer behind the same port."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import pytest

from domain.auth import AuthMode
from domain.errors import UnauthorizedError
from hemisphere.http.expiring_lru import ExpiringLru
from hemisphere.http.lambda_authorizer import (
    MALFORMED,
    NOT_AUTHORIZED,
    LambdaAuthorizer,
    denied_field_name,
    parse_answer,
    request_context,
)
from hemisphere.http.lambda_authorizer_ports import LambdaAuthorizerError
from hemisphere.settings import Settings, SettingsError

ARN = "arn:aws:appsync:us-east-1:123456789012:apis/abcdefghij/types/Query/fields/customer"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class InMemoryAuthorizer:
    """The port, answering each token from `answers` (an exception is raised instead)."""

    def __init__(self, answers: Mapping[str, object], delay: float = 0.0) -> None:
        self.answers = dict(answers)
        self.delay = delay
        self.requests: list[Mapping[str, Any]] = []
        self.closed = False

    async def invoke(self, request: Mapping[str, Any]) -> object:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        answer = self.answers.get(request["authorizationToken"], {"isAuthorized": False})
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True

    def calls(self, token: str) -> int:
        return sum(1 for r in self.requests if r["authorizationToken"] == token)


def authorizer(
    transport: InMemoryAuthorizer, clock: Clock | None = None, **kwargs: Any
) -> LambdaAuthorizer:
    return LambdaAuthorizer(
        transport,
        principal_key=b"k",
        api_id="api-1",
        account_id="123456789012",
        clock=clock or Clock(),
        **kwargs,
    )


async def authorize(subject: LambdaAuthorizer, token: str, body: bytes = b"{}") -> Any:
    return await subject.authorize(token, headers={"host": "h", "authorization": token}, body=body)


# --- the answer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("Query.customer", "Query.customer"), (ARN, "Query.customer"), ("Order.total", "Order.total")],
)
def test_denied_fields_in_both_forms_become_type_dot_field(entry: str, expected: str) -> None:
    assert denied_field_name(entry) == expected


@pytest.mark.parametrize(
    "entry",
    ["customer", "Query.", "Query.customer.id", "arn:aws:appsync:us-east-1:1:apis/x/types/Q", 3],
)
def test_a_denied_field_in_neither_form_is_refused(entry: object) -> None:
    with pytest.raises(ValueError, match="deniedFields"):
        denied_field_name(entry)


def test_an_answer_is_normalized() -> None:
    answer = parse_answer(
        {
            "isAuthorized": True,
            "resolverContext": {"customerId": "c-0001", "tier": 3, "beta": True},
            "deniedFields": ["Mutation.checkout", ARN],
            "ttlOverride": 99_999,
        }
    )
    assert answer.authorized
    assert answer.resolver_context == (("beta", "true"), ("customerId", "c-0001"), ("tier", "3"))
    assert answer.denied_fields == {"Mutation.checkout", "Query.customer"}
    assert answer.ttl == 3600  # AppSync's longest


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {},
        {"isAuthorized": "true"},
        {"isAuthorized": True, "resolverContext": ["a"]},
        {"isAuthorized": True, "resolverContext": {"nested": {"a": "b"}}},
        {"isAuthorized": True, "deniedFields": "Query.customer"},
        {"isAuthorized": True, "deniedFields": ["not a field"]},
        {"isAuthorized": True, "ttlOverride": -1},
        {"isAuthorized": True, "ttlOverride": "60"},
    ],
)
def test_a_malformed_answer_is_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_answer(raw)


def test_the_request_context_of_a_graphql_body() -> None:
    body = (
        b'{"query": "query Q { region { region } }", "operationName": "Q", "variables": {"a": 1}}'
    )
    assert request_context(body) == {
        "queryString": "query Q { region { region } }",
        "operationName": "Q",
        "variables": {"a": 1},
    }
    empty: dict[str, Any] = {"queryString": "", "operationName": None, "variables": {}}
    assert request_context(b"{}") == request_context(b"not json") == empty


# --- the caller -----------------------------------------------------------------------------


async def test_the_caller_of_an_authorized_token() -> None:
    transport = InMemoryAuthorizer(
        {
            "tok-1": {
                "isAuthorized": True,
                "resolverContext": {"customerId": "c-0001", "groups": "admins, buyers"},
                "deniedFields": ["Query.customer"],
            }
        }
    )
    caller = await authorize(authorizer(transport), "tok-1", b'{"query": "{ a }"}')
    assert caller.mode is AuthMode.AWS_LAMBDA
    assert caller.customer_id == "c-0001" and caller.groups == ("admins", "buyers")
    assert dict(caller.resolver_context) == {"customerId": "c-0001", "groups": "admins, buyers"}
    assert caller.denied_fields == {"Query.customer"}
    # A short stable name that is not the token.
    assert caller.principal.startswith("lambda:") and "tok-1" not in caller.principal
    again = await authorize(authorizer(transport), "tok-1")
    assert again.principal == caller.principal
    request = transport.requests[0]
    assert request["authorizationToken"] == "tok-1"
    assert request["requestHeaders"] == {"host": "h", "authorization": "tok-1"}
    context = request["requestContext"]
    assert context["apiId"] == "api-1" and context["accountId"] == "123456789012"
    assert context["queryString"] == "{ a }" and context["requestId"]


async def test_is_authorized_false_is_the_401_of_every_mode() -> None:
    with pytest.raises(UnauthorizedError, match=NOT_AUTHORIZED) as refused:
        await authorize(authorizer(InMemoryAuthorizer({})), "nobody")
    assert not isinstance(refused.value, LambdaAuthorizerError)


# --- cache ----------------------------------------------------------------------------------


async def test_an_answer_is_kept_for_the_configured_ttl() -> None:
    clock = Clock()
    transport = InMemoryAuthorizer({"t": {"isAuthorized": True}})
    subject = authorizer(transport, clock, ttl_seconds=60)
    await authorize(subject, "t")
    clock.now += 59
    await authorize(subject, "t")
    assert transport.calls("t") == 1
    clock.now += 1
    await authorize(subject, "t")
    assert transport.calls("t") == 2


async def test_no_ttl_means_no_caching() -> None:
    transport = InMemoryAuthorizer({"t": {"isAuthorized": True}})
    subject = authorizer(transport)
    for _ in range(3):
        await authorize(subject, "t")
    assert transport.calls("t") == 3


async def test_ttl_override_wins_both_ways() -> None:
    clock = Clock()
    transport = InMemoryAuthorizer(
        {
            "zero": {"isAuthorized": True, "ttlOverride": 0},
            "ten": {"isAuthorized": True, "ttlOverride": 10},
        }
    )
    subject = authorizer(transport, clock, ttl_seconds=300)
    for _ in range(2):
        await authorize(subject, "zero")
        await authorize(subject, "ten")
    assert transport.calls("zero") == 2 and transport.calls("ten") == 1
    clock.now += 10
    await authorize(subject, "ten")
    assert transport.calls("ten") == 2


async def test_a_refusal_is_kept_like_any_answer() -> None:
    transport = InMemoryAuthorizer({})
    subject = authorizer(transport, ttl_seconds=60)
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            await authorize(subject, "bad")
    assert transport.calls("bad") == 1


async def test_the_cache_is_bounded() -> None:
    transport = InMemoryAuthorizer({t: {"isAuthorized": True} for t in "abc"})
    subject = authorizer(transport, ttl_seconds=60, cache_entries=2)
    for token in "abca":
        await authorize(subject, token)
    # "a" was the least recently used when "c" came: it was asked again.
    assert [transport.calls(t) for t in "abc"] == [2, 1, 1]


def test_expiring_lru() -> None:
    clock = Clock()
    lru: ExpiringLru[str, int] = ExpiringLru(2, clock)
    lru.put("a", 1, 5)
    lru.put("b", 2, 50)
    assert lru.get("a") == 1  # now "b" is the least recently used
    lru.put("c", 3, 50)
    assert (lru.get("b"), len(lru)) == (None, 2)
    clock.now += 5
    assert lru.get("a") is None and lru.get("c") == 3
    lru.put("c", 4, 0)  # not kept, and the older answer is forgotten
    assert lru.get("c") is None


# --- tokens refused before the authorizer ---------------------------------------------------


async def test_tokens_not_matching_the_expression_never_reach_the_authorizer() -> None:
    transport = InMemoryAuthorizer(
        {"custom-1": {"isAuthorized": True}, "other": {"isAuthorized": True}}
    )
    subject = authorizer(transport, token_regex=r"custom-\d+")
    assert (await authorize(subject, "custom-1")).mode is AuthMode.AWS_LAMBDA
    with pytest.raises(UnauthorizedError):
        await authorize(subject, "other")
    with pytest.raises(UnauthorizedError):
        await authorize(subject, "custom-1x")  # the whole token must match
    assert transport.calls("other") == 0 and len(transport.requests) == 1


async def test_a_token_over_2048_characters_is_refused_unasked() -> None:
    transport = InMemoryAuthorizer({"x" * 2049: {"isAuthorized": True}})
    with pytest.raises(UnauthorizedError):
        await authorize(authorizer(transport), "x" * 2049)
    assert transport.requests == []


# --- failures -------------------------------------------------------------------------------


async def test_a_late_authorizer_is_a_named_error(caplog: pytest.LogCaptureFixture) -> None:
    transport = InMemoryAuthorizer({"t": {"isAuthorized": True}}, delay=5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(LambdaAuthorizerError, match=re.escape("did not answer within 0.05 s")):
        await authorize(authorizer(transport, timeout_seconds=0.05), "t")
    assert loop.time() - began < 1
    assert "LambdaAuthorizerError" in caplog.text


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (LambdaAuthorizerError("The Lambda authorizer failed.", "HTTP 500"), "failed"),
        ({"isAuthorized": "yes"}, MALFORMED),
        ("a string", MALFORMED),
    ],
)
async def test_a_failing_authorizer_is_a_named_error_and_nothing_is_kept(
    answer: object, message: str
) -> None:
    transport = InMemoryAuthorizer({"t": answer})
    subject = authorizer(transport, ttl_seconds=60)
    for _ in range(2):
        with pytest.raises(LambdaAuthorizerError, match=message):
            await authorize(subject, "t")
    assert transport.calls("t") == 2


async def test_closing_closes_the_transport() -> None:
    transport = InMemoryAuthorizer({})
    await authorizer(transport).aclose()
    assert transport.closed


# --- settings -------------------------------------------------------------------------------

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:authorizer"


def test_the_authorizer_settings() -> None:
    settings = Settings.from_env(
        {
            "HEMISPHERE_LAMBDA_AUTHORIZER_ARN": FUNCTION,
            "HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS": "300",
            "HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX": r"^custom-\d+$",
        }
    )
    assert settings.lambda_authorizer_arn == FUNCTION
    assert settings.lambda_authorizer_ttl_seconds == 300
    assert settings.lambda_authorizer_token_regex == r"^custom-\d+$"
    assert Settings.from_env({}).lambda_authorizer_ttl_seconds == 0


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"HEMISPHERE_LAMBDA_AUTHORIZER_ARN": "my-function"}, "HEMISPHERE_LAMBDA_AUTHORIZER_ARN"),
        (
            {"HEMISPHERE_LAMBDA_AUTHORIZER_URL": "localhost:9000"},
            "HEMISPHERE_LAMBDA_AUTHORIZER_URL",
        ),
        (
            {"HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS": "3601"},
            "HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS",
        ),
        (
            {"HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX": "custom-("},
            "HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX",
        ),
        (
            {
                "HEMISPHERE_LAMBDA_AUTHORIZER_ARN": FUNCTION,
                "HEMISPHERE_LAMBDA_AUTHORIZER_URL": "http://127.0.0.1:9000/authorize",
            },
            "HEMISPHERE_LAMBDA_AUTHORIZER_ARN and HEMISPHERE_LAMBDA_AUTHORIZER_URL",
        ),
    ],
)
def test_bad_authorizer_settings_are_one_line_naming_the_variable(
    env: dict[str, str], name: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(name)) as refused:
        Settings.from_env(env)
    assert "\n" not in str(refused.value)
