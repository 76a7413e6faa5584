"""What one subscription passes on of the changes published on its broker channel.

A change reaches the subscriber when
- every subscription argument given equals the same-named top-level field of the mutation's
  result (an omitted argument matches anything; a field the mutation did not select matches
  no given argument), as AppSync's `@aws_subscribe` does;
- the server's filter rule for the field, if any, and the client's enhanced filters, if any,
  all pass (subscriptions/filters.py).
The subscriber sees only the fields the mutation selected (subscriptions/selection.py). That a
subscriber never gets an older version of an item after a newer one is the broker's work
(subscriptions/inprocess.py): every subscriber of an instance is fed through one gate.

The client passes enhanced filters in the operation's `extensions` under "filter": an AppSync
filterJsonObject, or a list of them (all must pass). See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import strawberry

from domain.errors import BackendUnavailableError, BadRequestError
from subscriptions.context import RequestContext
from subscriptions.filter_fields import check_filter_fields
from subscriptions.filters import Filter, FilterError, matches_all, parse_filter
from subscriptions.ports import Message
from subscriptions.publication import selection_of
from subscriptions.root import SubscriptionRoot
from subscriptions.selection import graphql_value, top_level
from subscriptions.shared_events import shared_view
from subscriptions.tracing import record_delivery
from subscriptions.triggers import arguments_match

SubscriptionInfo = strawberry.Info[RequestContext, SubscriptionRoot | None]

FILTER_EXTENSION = "filter"
# How long a new subscription waits for the broker to confirm its channel (Redis answers in
# milliseconds; past this it is down, and the client is told to retry).
BROKER_LISTENING_TIMEOUT_SECONDS = 5.0


async def changes(
    info: SubscriptionInfo,
    mutation: str,
    arguments: Mapping[str, Any],
    decode: Callable[[Any], object],
    graphql_type: type,
) -> AsyncGenerator[Any, None]:
    """Checks the request, subscribes to the broker, and returns the deliveries. Errors in the
    request (a bad filter) are raised here, before the subscription is established, so the
    transport answers them with an error instead of an acknowledgement."""
    filters = requested_filters(info, arguments, graphql_type)
    # The broker routes by the arguments (an index, not a scan of every subscriber); the
    # deliveries still check them, with the selection's rules.
    broker = info.context.ports.broker
    source = broker.subscribe(mutation, where=arguments)
    # Acknowledge only once a change published anywhere in the region reaches us: a client
    # told it is subscribed must not miss the change it makes next.
    try:
        async with asyncio.timeout(BROKER_LISTENING_TIMEOUT_SECONDS):
            await broker.until_listening(mutation)
    except TimeoutError:
        await _close(source)
        raise BackendUnavailableError(
            "The subscription could not be established: the region's broker is not "
            "answering. Retry the subscription."
        ) from None
    except BaseException:
        await _close(source)
        raise
    root = info.root_value
    if root is not None and root.on_established is not None:
        root.on_established()
    return _deliveries(source, arguments, filters, decode, info.field_name)


def requested_filters(
    info: SubscriptionInfo, arguments: Mapping[str, Any], graphql_type: type
) -> tuple[Filter, ...]:
    caller = info.context.caller
    root = info.root_value
    rule = root.rules.get(info.field_name) if root is not None else None
    server_raw = rule(arguments, caller) if rule is not None else None
    client_raw = (info.input_extensions or {}).get(FILTER_EXTENSION)
    client_raws = client_raw if isinstance(client_raw, list) else [client_raw]
    try:
        server = [parse_filter(server_raw)] if server_raw is not None else []
        client = [parse_filter(raw) for raw in client_raws if raw is not None]
    except FilterError as exc:
        raise BadRequestError(str(exc)) from exc
    check_filter_fields(server, graphql_type, None)
    check_filter_fields(client, graphql_type, caller.mode)
    return (*server, *client)


async def _deliveries(
    source: AsyncIterator[Message],
    arguments: Mapping[str, Any],
    filters: tuple[Filter, ...],
    decode: Callable[[Any], object],
    field: str,
) -> AsyncGenerator[Any, None]:
    try:
        async for message in source:
            mask = selection_of(message)
            if not arguments_match(arguments, top_level(message, mask)):
                continue
            # Decoded once for every subscriber of the instance (subscriptions.shared_events):
            # the same payload object lets equal subscribers share one execution too.
            snapshot, shown = shared_view(message, decode)
            if filters and not matches_all(filters, graphql_value(snapshot, mask)):
                continue
            record_delivery(message, field)
            yield shown
    finally:
        # Stopping a subscription closes this generator; close the broker's too, now, so it
        # forgets the subscriber at once rather than when the garbage collector gets to it.
        await _close(source)


async def _close(source: AsyncIterator[Message]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
