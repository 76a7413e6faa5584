"""AWS_LAMBDA authorization with AppSync's semantics: the caller's `Authorization` value goes
to an authorizer (a Lambda function, or locally an HTTP endpoint: lambda_authorizer_ports),
whose answer says whether it may call and what the resolvers learn of it.

    token ─▶ at most 2048 characters, matches the identityValidationExpression if one is set
             (else refused without calling the authorizer)
          ─▶ cached answer for this token?  ─▶ use it
          ─▶ the authorizer, within 10 s, with AppSync's request object:
             {"authorizationToken", "requestContext": {apiId, accountId, requestId,
              queryString, operationName, variables}, "requestHeaders"}
          ─▶ its answer: isAuthorized (required), resolverContext (flat object), deniedFields
             ("Type.field" or the field's full AppSync ARN, both kept as "Type.field"),
             ttlOverride (seconds)
          ─▶ kept (refusals too) for ttlOverride, else the configured TTL (0: not at all)
          ─▶ Caller(AWS_LAMBDA, a digest of the token, customer id and groups from the
             resolver context, the context itself, the denied fields)

isAuthorized false is the 401 every other mode gives. An authorizer that fails (unreachable,
an error, late, a malformed answer) is LambdaAuthorizerError: a 401 that says the authorizer
failed, logged with what happened; nothing is cached for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from domain.auth import AuthMode, Caller
from domain.errors import UnauthorizedError
from hemisphere.http.expiring_lru import ExpiringLru
from hemisphere.http.lambda_authorizer_ports import AuthorizerTransport, LambdaAuthorizerError

log = logging.getLogger(__name__)

# AppSync's limits: the token's length, the authorizer's time, the longest caching.
MAX_TOKEN_LENGTH = 2048
TIMEOUT_SECONDS = 10.0
MAX_TTL_SECONDS = 3600
CACHE_ENTRIES = 10_000
NOT_AUTHORIZED = "You are not authorized to make this call."
MALFORMED = "The Lambda authorizer's response is malformed."
# What the resolver context must hold for the contract's ownership rules (documented).
CUSTOMER_KEY = "customerId"
GROUPS_KEY = "groups"

_NAME = r"[_A-Za-z][_0-9A-Za-z]*"
_SHORT = re.compile(rf"^({_NAME})\.({_NAME})$")
_ARN = re.compile(
    rf"^arn:aws[a-z-]*:appsync:[a-z0-9-]+:\d{{12}}:apis/[^/]+/types/({_NAME})/fields/({_NAME})$"
)


def denied_field_name(entry: object) -> str:
    """A `deniedFields` entry as "Type.field"; ValueError when it is neither AppSync form."""
    if isinstance(entry, str):
        match = _SHORT.match(entry) or _ARN.match(entry)
        if match:
            return f"{match[1]}.{match[2]}"
    raise ValueError(f"deniedFields entry {entry!r} is neither Type.field nor a field ARN")


@dataclass(frozen=True, slots=True)
class Answer:
    """An authorizer's response, checked."""

    authorized: bool
    resolver_context: tuple[tuple[str, str], ...] = ()
    denied_fields: frozenset[str] = frozenset()
    ttl: int | None = None


def parse_answer(raw: object) -> Answer:
    """ValueError when `raw` is not AppSync's response shape (a deny list that cannot be read
    must not be read as "nothing denied")."""
    if not isinstance(raw, dict):
        raise ValueError("the response is not a JSON object")
    authorized = raw.get("isAuthorized")
    if not isinstance(authorized, bool):
        raise ValueError("isAuthorized is missing or not a boolean")
    context = raw.get("resolverContext") or {}
    if not isinstance(context, dict):
        raise ValueError("resolverContext is not an object")
    pairs = []
    for key, value in context.items():
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"resolverContext.{key} is not a string (nested values are not)")
        # Flat values only, as AppSync: numbers and booleans are kept as their JSON text.
        pairs.append((key, value if isinstance(value, str) else orjson.dumps(value).decode()))
    denied = raw.get("deniedFields") or []
    if not isinstance(denied, list):
        raise ValueError("deniedFields is not a list")
    ttl = raw.get("ttlOverride")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0):
        raise ValueError(f"ttlOverride {ttl!r} is not a number of seconds")
    return Answer(
        authorized,
        tuple(sorted(pairs)),
        frozenset(denied_field_name(entry) for entry in denied),
        None if ttl is None else min(int(ttl), MAX_TTL_SECONDS),
    )


def caller_of(answer: Answer, principal: str) -> Caller:
    context = dict(answer.resolver_context)
    groups = context.get(GROUPS_KEY, "")
    return Caller(
        AuthMode.AWS_LAMBDA,
        principal,
        customer_id=context.get(CUSTOMER_KEY) or None,
        groups=tuple(g.strip() for g in groups.split(",") if g.strip()),
        resolver_context=answer.resolver_context,
        denied_fields=answer.denied_fields,
    )


def request_context(body: bytes) -> dict[str, Any]:
    """queryString, operationName and variables of a GraphQL request body (empty for a
    connection, which has none)."""
    try:
        request = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        request = {}
    if not isinstance(request, dict):
        request = {}
    query, name, variables = (request.get(k) for k in ("query", "operationName", "variables"))
    return {
        "queryString": query if isinstance(query, str) else "",
        "operationName": name if isinstance(name, str) else None,
        "variables": variables if isinstance(variables, dict) else {},
    }


class LambdaAuthorizer:
    def __init__(
        self,
        transport: AuthorizerTransport,
        *,
        principal_key: bytes,
        api_id: str,
        account_id: str,
        ttl_seconds: int = 0,
        token_regex: str | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`principal_key`: keys the digest that names a caller (its token never is a name:
        it would land in logs and rate-limit keys). `ttl_seconds`: caching when the answer has
        no ttlOverride (AppSync's authorizerResultTtlInSeconds)."""
        self._transport = transport
        self._principal_key = principal_key
        self._api_id = api_id
        self._account_id = account_id
        self._ttl = ttl_seconds
        self._token_regex = re.compile(token_regex) if token_regex is not None else None
        self._timeout = timeout_seconds
        # By the token's digest (not the token: 32 bytes an entry); (None,) is a refusal.
        self._answers: ExpiringLru[bytes, tuple[Caller | None]] = ExpiringLru(cache_entries, clock)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def authorize(self, token: str, *, headers: Mapping[str, str], body: bytes) -> Caller:
        if len(token) > MAX_TOKEN_LENGTH or (
            self._token_regex is not None and not self._token_regex.fullmatch(token)
        ):
            raise UnauthorizedError(NOT_AUTHORIZED)
        key = hashlib.sha256(token.encode()).digest()
        cached = self._answers.get(key)
        if cached is None:
            answer = await self._ask(token, headers, body)
            caller = caller_of(answer, self._principal(token)) if answer.authorized else None
            # A refusal is kept too (as AppSync keeps any answer): a flood of one bad token
            # costs the authorizer one call per TTL.
            cached = (caller,)
            self._answers.put(key, cached, self._ttl if answer.ttl is None else answer.ttl)
        if cached[0] is None:
            raise UnauthorizedError(NOT_AUTHORIZED)
        return cached[0]

    def _principal(self, token: str) -> str:
        digest = hmac.new(self._principal_key, token.encode(), hashlib.sha256).hexdigest()
        return f"lambda:{digest[:20]}"

    async def _ask(self, token: str, headers: Mapping[str, str], body: bytes) -> Answer:
        request = {
            "authorizationToken": token,
            "requestContext": {
                "apiId": self._api_id,
                "accountId": self._account_id,
                "requestId": str(uuid.uuid4()),
                **request_context(body),
            },
            "requestHeaders": dict(headers),
        }
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._transport.invoke(request)
            return parse_answer(raw)
        except TimeoutError:
            error = LambdaAuthorizerError(
                f"The Lambda authorizer did not answer within {self._timeout:g} s.",
                f"no answer within {self._timeout:g} s",
            )
        except ValueError as exc:
            error = LambdaAuthorizerError(MALFORMED, str(exc))
        except LambdaAuthorizerError as exc:
            error = exc
        log.warning("LambdaAuthorizerError: %s (%s)", error.message, error.detail)
        raise error
