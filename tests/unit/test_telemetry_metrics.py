"""Pure pieces of telemetry: a replicator's status as Prometheus text, the operation a
request runs, and the telemetry settings."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hemisphere.metrics import operation_of, replication_metrics
from hemisphere.settings import Settings, SettingsError

STATUS = {
    "region": "us-east-1",
    "targets": {
        "eu-west-1": {
            "state": "replicating",
            "lag_ms": {"last": 80.0, "p50": 75.5, "p99": 120.0, "max": 300.0, "samples": 40},
            "pending_ms": None,
            # Nine changes within 100 ms, two slower (one to a second, one beyond).
            "lag_histogram": {"le_ms": [50, 100, 1000], "counts": [4, 5, 1, 1], "sum_ms": 1500.0},
            "sent": 12,
            "written": 11,
            "full_copies": 0,
            "error": None,
        },
        "ap-southeast-2": {
            "state": "unreachable",
            "lag_ms": {"last": None, "p50": None, "p99": None, "max": None, "samples": 0},
            "pending_ms": 2500.0,
            "sent": 0,
            "written": 0,
            "full_copies": 0,
            "error": "connection refused",
        },
    },
}


def test_a_replicators_status_as_metrics() -> None:
    text = replication_metrics(STATUS).decode()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    lag = "hemisphere_dynamodb_replication_lag_seconds"
    assert values[(lag, (("stat", "p99"), ("target", "eu-west-1")))] == 0.12
    # No samples: no lag reported (not a zero that would read as "caught up").
    assert not any(
        name == lag and ("target", "ap-southeast-2") in labels for name, labels in values
    )
    pending = "hemisphere_dynamodb_replication_pending_seconds"
    assert values[(pending, (("target", "ap-southeast-2"),))] == 2.5
    items = "hemisphere_dynamodb_replication_items_total"
    assert values[(items, (("outcome", "written"), ("target", "eu-west-1")))] == 11
    # Every change's lag, counted: cumulative buckets by bound in seconds.
    bucket = "hemisphere_dynamodb_replication_lag_histogram_seconds_bucket"
    assert values[(bucket, (("le", "0.1"), ("target", "eu-west-1")))] == 9
    assert values[(bucket, (("le", "+Inf"), ("target", "eu-west-1")))] == 11
    total = "hemisphere_dynamodb_replication_lag_histogram_seconds_sum"
    assert values[(total, (("target", "eu-west-1"),))] == 1.5


def test_the_operation_of_a_request() -> None:
    two = "query A { region { region } } mutation B { x }"
    assert operation_of(two, "B") == ("mutation", "B")
    assert operation_of("{ region { region } }", None) == ("query", "")
    assert operation_of("subscription S { onOrderChanged { id } }", None) == ("subscription", "S")
    assert operation_of("{ broken", None)[0] == "invalid"
    assert operation_of(two, "Missing") == ("invalid", "Missing")


def test_the_otlp_endpoint_setting() -> None:
    assert Settings.from_env({}).otlp_endpoint is None
    standard = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert standard.otlp_endpoint == "http://collector:4318"
    ours = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "HEMISPHERE_OTLP_ENDPOINT": "http://other:4318",
            "OTEL_SERVICE_NAME": "api-eu",
        }
    )
    assert (ours.otlp_endpoint, ours.service_name) == ("http://other:4318", "api-eu")
    with pytest.raises(SettingsError, match="HEMISPHERE_OTLP_ENDPOINT"):
        Settings.from_env({"HEMISPHERE_OTLP_ENDPOINT": "collector:4318"})
