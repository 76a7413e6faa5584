"""The region's broker: every API instance hears every change published in the region; and
the publication sink the stream publisher feeds it through."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

from domain.aggregates import Snapshot
from domain.errors import BackendUnavailableError, HemisphereError

Message = dict[str, Any]
# Marks a message published by the region's change-stream publisher: only those feed the
# instances' VersionGate (subscriptions.inprocess). Not a GraphQL name, so never a field.
STREAM_KEY = "$stream"
# The W3C trace context of the change a message carries (subscriptions.tracing): each
# subscriber's delivery is a span in that trace. GraphQL names match [_A-Za-z][_0-9A-Za-z]*,
# so "$trace" never collides with a field.
TRACE_KEY = "$trace"


class Broker(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(
        self, channel: str, where: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Message]:
        """Messages published on `channel` from now on, until the iterator is closed; with
        `where` (field -> value, None meaning any), at least those whose fields equal the
        values, and possibly others (the caller still checks)."""
        ...

    async def until_listening(self, channel: str) -> None:
        """Returns once a publication on `channel` anywhere in the region reaches this
        instance's subscribers (call it before telling a client it is subscribed)."""
        ...


@runtime_checkable
class FeedHealth(Protocol):
    """A broker that can say whether this instance hears everything published: what a cache
    kept exact by publications needs (a pub/sub gap loses messages)."""

    def feed_state(self, channels: tuple[str, ...]) -> int | None:
        """None unless every one of `channels` is subscribed and confirmed with no gap in
        progress; otherwise the number of gaps so far (a new value: messages were lost)."""
        ...


# --- the stream publisher's way out: the API's publish* mutations ------------------------------


class PublicationFailedError(BackendUnavailableError):
    """The API could not take the publication now (down, overloaded, broker down, or our
    credentials refused): retry; the change must not be skipped."""


class PublicationUnreachableError(PublicationFailedError):
    """The API accepted no connection: down, or not listening yet (a process whose API and
    publisher start together publishes before its server listens)."""


class PublicationRejectedError(HemisphereError):
    """The API refused this publication for good (it is invalid): retrying cannot help."""


class PublicationSink(Protocol):
    """Where the stream publisher sends each change: the region's API, as the contract's
    publish* mutation of the snapshot's aggregate (adapters.appsync over HTTP)."""

    async def publish(self, snapshot: Snapshot) -> None:
        """Raises PublicationFailedError (retry) or PublicationRejectedError (skip)."""
        ...
