"""Reading the simulated card provider's ledger, for tests that check money invariants."""

from __future__ import annotations

from typing import Any

import httpx


async def ledger(base_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every authorization, capture and refund the simulator has recorded."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/v1/ledger")
        response.raise_for_status()
        answer: dict[str, list[dict[str, Any]]] = response.json()
        return answer


def by_key(entries: list[dict[str, Any]], idempotency_key: str) -> list[dict[str, Any]]:
    """The ledger entries made under one idempotency key (one test's own)."""
    return [entry for entry in entries if entry["idempotencyKey"] == idempotency_key]
