"""AppSync-style pagination: `limit` (default 20, at most 100) and an opaque `nextToken`.

A token is the store's cursor signed with the deployment's secret and bound to the query it
came from, so a client can neither forge a position nor carry a token to another query: either
is a BadRequestException, as in AppSync.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from domain.errors import BadRequestError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise BadRequestError(f"limit must be a positive number, got {limit}")
    return min(limit, MAX_LIMIT)


class PageTokens:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(
            secret, salt="hemisphere.nextToken", signer_kwargs={"digest_method": _sha256}
        )

    def issue(self, scope: str, cursor: dict[str, Any] | None) -> str | None:
        if cursor is None:
            return None
        return str(self._serializer.dumps({"s": scope, "c": cursor}))

    def open(self, scope: str, token: str | None) -> dict[str, Any] | None:
        if token is None:
            return None
        try:
            data = self._serializer.loads(token)
        except BadData as exc:
            raise BadRequestError("Invalid pagination token given.") from exc
        if (
            not isinstance(data, dict)
            or data.get("s") != scope
            or not isinstance(data.get("c"), dict)
        ):
            raise BadRequestError("Invalid pagination token given: it belongs to another query.")
        cursor: dict[str, Any] = data["c"]
        return cursor


def _sha256(data: bytes = b"") -> Any:
    import hashlib

    return hashlib.sha256(data)
