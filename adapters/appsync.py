"""The region's GraphQL API as a backend: the stream publisher's publications, sent as the
contract's publish* mutations over HTTP, signed with SigV4 (service `appsync`) as AppSync's
IAM callers sign, to a real AppSync API or to Hemisphere's twin of it.

Port: subscriptions.ports.PublicationSink. The mutation of a snapshot is its aggregate's
(domain.aggregates); the documents are given (schema.publish_documents builds them from the
contract, and the composition root hands them over: an adapter does not read the contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from domain.aggregates import Snapshot, of_snapshot
from subscriptions.ports import (
    PublicationFailedError,
    PublicationRejectedError,
    PublicationUnreachableError,
)

# The publication's span keeps the instrumentation name it had beside the publisher, so a
# trace of a change reads the same (write -> stream -> publish -> fan-out) as before. The
# tracer is looked up at each use: one kept from import would keep the first provider.
_TRACER = "hemisphere.subscriptions"

# errorTypes that say "not now" rather than "not this".
_TRANSIENT_ERROR_TYPES: Final = frozenset({"ServiceUnavailable", "Throttling", "ReadOnlyRegion"})


def publication_input(snapshot: Snapshot) -> dict[str, Any]:
    """The publish mutation's `input`: the publication inputs have the snapshot's fields
    under the contract's names, so the codec's plain form is the input as it is."""
    return of_snapshot(snapshot).to_plain(snapshot)


class AppSyncPublicationSink:
    """POSTs publish mutations to `url`; `documents` by mutation name
    (schema.publish_documents.publication_documents()). `credentials` may be botocore's
    refreshable ones (a task role)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        region: str,
        *,
        documents: Mapping[str, str],
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._credentials = credentials
        self._region = region
        self._documents = documents
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def publish(self, snapshot: Snapshot) -> None:
        mutation = of_snapshot(snapshot).publish_mutation
        body = orjson.dumps(
            {
                "query": self._documents[mutation],
                "variables": {"input": publication_input(snapshot)},
            }
        )
        with trace.get_tracer(_TRACER).start_as_current_span(
            mutation, kind=SpanKind.PRODUCER, attributes={"hemisphere.entity.id": snapshot.id}
        ):
            headers = self.signed_headers(body)
            # The API's request (and the fan-out it makes) continues this trace; the
            # header is not signed, so it changes nothing of the signature.
            propagate.inject(headers)
            try:
                response = await self._client.post(self._url, content=body, headers=headers)
            except httpx.ConnectError as error:
                raise PublicationUnreachableError(
                    f"{mutation} to {self._url}: {error!r}"
                ) from error
            except httpx.HTTPError as error:
                raise PublicationFailedError(f"{mutation} to {self._url}: {error!r}") from error
            raise_for_answer(mutation, response)

    def signed_headers(self, body: bytes) -> dict[str, str]:
        request = AWSRequest(
            method="POST", url=self._url, data=body, headers={"content-type": "application/json"}
        )
        SigV4Auth(self._credentials, "appsync", self._region).add_auth(request)
        return dict(request.headers.items())

    async def aclose(self) -> None:
        await self._client.aclose()


def raise_for_answer(mutation: str, response: httpx.Response) -> None:
    """Raise PublicationFailedError (retry) or PublicationRejectedError (skip) unless the API
    took the publication."""
    status = response.status_code
    if status in (401, 403):
        # Every publication would fail alike: a configuration error to fix, never a reason
        # to skip changes.
        raise PublicationFailedError(
            f"{mutation}: HTTP {status} {response.text[:300]} (check the publisher's IAM "
            "credentials against HEMISPHERE_IAM_CREDENTIALS)"
        )
    if status == 429 or status >= 500:
        raise PublicationFailedError(f"{mutation}: HTTP {status} {response.text[:300]}")
    if status != 200:
        raise PublicationRejectedError(f"{mutation}: HTTP {status} {response.text[:300]}")
    try:
        errors = orjson.loads(response.content).get("errors") or []
    except (orjson.JSONDecodeError, AttributeError) as error:
        raise PublicationFailedError(f"{mutation}: the answer is not a JSON object") from error
    if not errors:
        return
    types = {str(e.get("errorType")) for e in errors if isinstance(e, dict)}
    if types & _TRANSIENT_ERROR_TYPES:
        raise PublicationFailedError(f"{mutation}: {errors}")
    raise PublicationRejectedError(f"{mutation}: {errors}")
