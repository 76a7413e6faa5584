"""The latency matrix: presets, FILE parsing, symmetric lookup, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regions import latency
from regions.latency import LatencyMatrixError


def test_global_preset_is_symmetric_and_has_the_agreed_rtts() -> None:
    matrix = latency.load("global")
    assert matrix.rtt_ms("us-east-1", "eu-west-1") == 75
    assert matrix.rtt_ms("eu-west-1", "us-east-1") == 75
    assert matrix.rtt_ms("ap-southeast-2", "us-east-1") == 200
    assert matrix.rtt_ms("eu-west-1", "ap-southeast-2") == 250
    assert matrix.rtt_ms("ap-southeast-2", "ap-southeast-2") == 10


def test_one_way_is_half_the_round_trip_in_seconds() -> None:
    assert latency.GLOBAL.one_way_seconds("us-east-1", "ap-southeast-2") == pytest.approx(0.1)


def test_none_preset_is_zero_for_any_names() -> None:
    assert latency.load("none").rtt_ms("here", "anywhere") == 0
    assert latency.NONE.one_way_seconds("x", "x") == 0


def test_unknown_pair_is_an_error_that_names_it() -> None:
    with pytest.raises(LatencyMatrixError, match="us-west-2↔us-east-1"):
        latency.GLOBAL.rtt_ms("us-west-2", "us-east-1")


def test_unknown_preset_or_missing_file_is_an_error() -> None:
    with pytest.raises(LatencyMatrixError, match="neither a preset"):
        latency.load("galactic")


def test_nearest_first_orders_by_rtt_from_the_location() -> None:
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    assert latency.GLOBAL.nearest_first("ap-southeast-2", regions) == [
        "ap-southeast-2",
        "us-east-1",
        "eu-west-1",
    ]
    assert latency.GLOBAL.nearest_first("eu-west-1", regions) == [
        "eu-west-1",
        "us-east-1",
        "ap-southeast-2",
    ]


def test_file_overrides_its_base_preset_and_adds_places(tmp_path: Path) -> None:
    path = tmp_path / "latency.json"
    path.write_text(
        json.dumps(
            {
                "base": "global",
                "local_rtt_ms": 4,
                "rtt_ms": {"eu-west-1": {"us-east-1": 80}, "sa-east-1": {"us-east-1": 120}},
            }
        )
    )
    matrix = latency.load(path)
    assert matrix.rtt_ms("us-east-1", "eu-west-1") == 80
    assert matrix.rtt_ms("us-east-1", "sa-east-1") == 120
    assert matrix.rtt_ms("ap-southeast-2", "eu-west-1") == 250  # from the base
    assert matrix.rtt_ms("sa-east-1", "sa-east-1") == 4
    with pytest.raises(LatencyMatrixError):
        matrix.rtt_ms("sa-east-1", "eu-west-1")


def test_default_rtt_covers_unlisted_pairs() -> None:
    matrix = latency.load({"default_rtt_ms": 42})
    assert matrix.rtt_ms("a", "b") == 42


def test_round_trip_through_the_file_form() -> None:
    again = latency.load(latency.GLOBAL.to_json())
    for a in ("us-east-1", "eu-west-1", "ap-southeast-2"):
        for b in ("us-east-1", "eu-west-1", "ap-southeast-2"):
            assert again.rtt_ms(a, b) == latency.GLOBAL.rtt_ms(a, b)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"rtts": {}}, "unknown key"),
        ({"rtt_ms": {"a": {"b": -1}}}, "≥ 0"),
        ({"rtt_ms": {"a": {"b": "fast"}}}, "≥ 0"),
        ({"rtt_ms": {"a": {"b": True}}}, "≥ 0"),
        ({"rtt_ms": {"a": {"b": 1}, "b": {"a": 2}}}, "given twice"),
        ({"rtt_ms": {"a": {"a": 1}}}, "local_rtt_ms"),
        ({"rtt_ms": {"a": 5}}, "must be an object"),
        ({"base": "mars"}, "unknown latency preset"),
    ],
)
def test_malformed_documents_are_named_errors(document: object, message: str) -> None:
    with pytest.raises(LatencyMatrixError, match=message):
        latency.from_document(document, source="test")


def test_file_that_is_not_json_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(LatencyMatrixError, match="not readable JSON"):
        latency.load(path)
