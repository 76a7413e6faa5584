"""The drill's customers: tokens from the development issuer in the data dir, made once per
customer and renewed before they expire; the subscriptions and order reads they authorize."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import jwt
import pytest

from hemisphere.drill.finals import BATCH, OrderReader
from hemisphere.drill.realtime import start_message
from hemisphere.drill.records import Acknowledged
from hemisphere.drill.tokens import NoIssuerError, customer_tokens
from hemisphere.local_issuer import RENEW_BEFORE_S, CustomerTokens, LocalIssuer


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_a_token_per_customer_made_once_and_renewed_before_it_expires(tmp_path: Path) -> None:
    now = [1_000_000.0]
    tokens = CustomerTokens(LocalIssuer(tmp_path, "http://127.0.0.1:1"), clock=lambda: now[0])
    first = tokens.token("c-0001")
    assert tokens.token("c-0001") == first
    assert claims(first)["sub"] == "c-0001" and claims(tokens.token("c-0002"))["sub"] == "c-0002"
    assert tokens.headers("c-0001") == {"authorization": first}
    now[0] += 3600 - RENEW_BEFORE_S + 1
    assert tokens.token("c-0001") != first


def test_the_issuer_of_the_data_dir_or_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(NoIssuerError, match="no development token issuer in") as refused:
        customer_tokens(tmp_path)
    assert "\n" not in str(refused.value)
    LocalIssuer(tmp_path, "http://127.0.0.1:8099").remember(tmp_path)
    token = customer_tokens(tmp_path).token("c-0003")
    assert claims(token)["iss"] == "http://127.0.0.1:8099"


def test_each_subscription_is_started_with_its_customers_token(tmp_path: Path) -> None:
    token = CustomerTokens(LocalIssuer(tmp_path, "http://127.0.0.1:1")).token("c-0004")
    start = start_message("127.0.0.1:8000", "c-0004", token)
    payload = start["payload"]
    assert isinstance(payload, dict)
    assert start["id"] == "orders-c-0004"
    assert json.loads(payload["data"])["variables"] == {"c": "c-0004"}
    assert "onOrderChanged(customerId: $c)" in json.loads(payload["data"])["query"]
    assert payload["extensions"]["authorization"] == {
        "host": "127.0.0.1:8000",
        "authorization": token,
    }


async def test_orders_are_read_back_in_batches_of_one_customer(tmp_path: Path) -> None:
    tokens = CustomerTokens(LocalIssuer(tmp_path, "http://127.0.0.1:1"))
    acknowledged = [
        Acknowledged(f"o-{n}", "us-east-1", float(n), f"c-000{n % 2 + 1}") for n in range(25)
    ]
    acknowledged.append(Acknowledged("o-nobody", "us-east-1", 30.0))
    async with aiohttp.ClientSession() as http:
        reader = OrderReader.of(http, tokens, acknowledged)
        chunks = list(reader.chunks([a.order_id for a in acknowledged]))
    assert [(owner, len(ids)) for owner, ids in chunks] == [
        ("c-0001", BATCH),
        ("c-0001", 3),
        ("c-0002", BATCH),
        ("c-0002", 2),
    ]
    for owner, ids in chunks:
        assert all(reader.owners[order_id] == owner for order_id in ids)
