"""What a publish* mutation puts on the broker: the snapshot, plain (domain.codec), plus the
mutation's selection under a key no GraphQL field can have, unless the mutation selected
every field (the region's publisher always does): then the snapshot travels alone.

Keeping the snapshot at the top level (rather than wrapping it) lets a reader that knows
nothing of selections still read the change; a message without a selection counts as
selecting every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from subscriptions.context import RequestContext
from subscriptions.ports import STREAM_KEY, Message
from subscriptions.selection import ALL, AllFields, Mask, covers, mask_from_json, mask_of
from subscriptions.tracing import carry_trace

# GraphQL names match [_A-Za-z][_0-9A-Za-z]*, so "$selection" never collides with a field.
SELECTION_KEY = "$selection"


def change_message(plain: Mapping[str, Any], selection: Mask) -> Message:
    return {**plain, SELECTION_KEY: selection}


def selection_of(message: Mapping[str, Any]) -> Mask | AllFields:
    """The mutation's selection carried by a broker message (ALL when it carries none)."""
    raw = message.get(SELECTION_KEY)
    return ALL if raw is None else mask_from_json(raw)


async def publish_change(info: strawberry.Info, mutation: str, plain: Mapping[str, Any]) -> None:
    """Publish a mutation's result for its subscribers, with the fields the mutation selected.
    Call it from the resolver of a mutation that an `@aws_subscribe` names (its context is
    the resolvers' Context, which provides what a RequestContext names)."""
    context: RequestContext = info.context
    selection = mask_of(info.selected_fields).get(info.field_name)
    mask = selection if isinstance(selection, dict) else {}
    message = dict(plain) if covers(mask, plain) else change_message(plain, mask)
    if context.caller.stream_publisher:
        message[STREAM_KEY] = True
    carry_trace(message)
    await context.ports.broker.publish(mutation, message)
