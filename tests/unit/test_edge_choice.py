"""Which region an edge picks, and how an edges spec is read."""

from __future__ import annotations

import pytest

from regions import latency
from regions.edge import choose_region, unavailable_body
from regions.edge_runner import EdgesSpec

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.mark.parametrize(
    ("location", "healthy", "expected"),
    [
        ("ap-southeast-2", set(REGIONS), "ap-southeast-2"),
        ("ap-southeast-2", {"us-east-1", "eu-west-1"}, "us-east-1"),  # 200 ms < 250 ms
        ("eu-west-1", {"ap-southeast-2", "us-east-1"}, "us-east-1"),
        ("us-east-1", {"ap-southeast-2"}, "ap-southeast-2"),
        ("us-east-1", set(), None),
    ],
)
def test_the_nearest_healthy_region_is_chosen(
    location: str, healthy: set[str], expected: str | None
) -> None:
    assert choose_region(location, REGIONS, healthy, latency.GLOBAL) == expected


def test_ties_go_to_the_locations_own_region_then_to_the_first_listed() -> None:
    # With `none` every RTT is 0: each location must still keep its own region.
    assert choose_region("a", ["b", "a"], {"a", "b"}, latency.NONE) == "a"
    assert choose_region("b", ["b", "a"], {"a", "b"}, latency.NONE) == "b"
    assert choose_region("a", ["b", "a", "c"], {"b", "c"}, latency.NONE) == "b"
    assert choose_region("x", ["c", "b"], {"b", "c"}, latency.NONE) == "c"


def test_the_unavailable_answer_has_appsync_shape() -> None:
    body = unavailable_body("no healthy region")
    assert body["errors"] == [
        {
            "message": "no healthy region",
            "errorType": "ServiceUnavailable",
            "errorInfo": {"retryable": True},
        }
    ]


def test_an_edges_spec_reads_defaults_and_latency() -> None:
    spec = EdgesSpec.from_json(
        {
            "latency": "global",
            "regions": {"us-east-1": "http://127.0.0.1:8001/graphql"},
            "edges": [{"location": "us-east-1", "listen": "127.0.0.1:8000"}],
        }
    )
    assert spec.matrix is latency.GLOBAL
    assert spec.interval == 1.0 and spec.failure_threshold == 3
    assert spec.edges[0].port == 8000


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"edges": []}, "lacks 'regions'"),
        ({"regions": {}, "edges": []}, "regions must map"),
        ({"regions": {"a": "http://x:1"}, "edges": [{"location": "a"}]}, "listen 'host:port'"),
        ({"regions": {"a": "http://x:1"}, "edges": [], "latency": "mars"}, "neither a preset"),
    ],
)
def test_a_bad_edges_spec_is_a_named_error(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EdgesSpec.from_json(document)
