"""The control endpoint of a running `hemisphere up` (GLOBAL.md): status, stop, start, promote."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal, Self

import httpx

Json = dict[str, Any]
STATUS_TIMEOUT_S = 2.0
# Promotion answers only once the region accepts writes; a restart once its processes run.
ACTION_TIMEOUT_S = 120.0


class ControlError(Exception):
    """The control endpoint refused an action or could not be reached."""


class ControlClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=ACTION_TIMEOUT_S)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def status(self) -> Json:
        try:
            response = await self._http.get("/status", timeout=STATUS_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise ControlError(
                f"the control endpoint {self.base_url} does not answer "
                f"({type(error).__name__}): is `hemisphere up` running?"
            ) from error
        return self._json(response, "GET /status")

    async def act(self, action: Literal["stop", "start", "promote"], region: str) -> Json:
        where = f"POST /regions/{region}/{action}"
        try:
            response = await self._http.post(f"/regions/{region}/{action}")
        except httpx.HTTPError as error:
            raise ControlError(f"{where}: {type(error).__name__} {error}") from error
        return self._json(response, where)

    @staticmethod
    def _json(response: httpx.Response, where: str) -> Json:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.status_code >= 400 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else body
            raise ControlError(f"{where}: HTTP {response.status_code}: {error}")
        return body
