"""One immutable settings object, read from the environment once. Nothing else reads
os.environ. A missing or malformed setting stops start-up with one line naming the variable.

It stays one module over 400 lines: it is the one parser of the environment, each variable's
field, its reading and its check side by side."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_USER_POOL = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LAMBDA_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z]{2}(-[a-z]+)+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:[A-Za-z0-9_$-]{1,128})?$"
)
# AppSync's bounds: an authorizer's answer is cached for at most an hour; a token is at most
# 2048 characters (hemisphere.http.lambda_authorizer).
MAX_AUTHORIZER_TTL_SECONDS = 3600


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    # Backends. None selects the embedded local stack (only `hemisphere serve` starts one).
    database_url: str | None = None
    aws_endpoint_url: str | None = None
    redis_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    # Topology.
    region: str = "us-east-1"
    primary_region: str = "us-east-1"
    table_name: str = "hemisphere"
    # The AWS endpoint of the primary region's Step Functions, where a secondary sends its
    # writes (None: AWS's own regional endpoint, or AWS_ENDPOINT_URL in this region).
    primary_aws_endpoint_url: str | None = None
    # The card provider's API (None: `serve` starts the simulated provider).
    payments_url: str | None = None
    payments_timeout_seconds: float = 5.0
    event_bus_name: str = "hemisphere"
    # The role Step Functions assumes to send task messages (moto accepts any).
    state_machine_role_arn: str = "arn:aws:iam::123456789012:role/hemisphere-sagas"
    # Whether this process also runs the workers (outbox relay, saga steps, profile updates,
    # reconciler); a deployment with `hemisphere worker` containers may turn it off.
    run_workers: bool = True
    # Where the change-stream publisher sends publish* mutations: the region's API (`serve`
    # sets its own address). None: no publisher in this process.
    publish_url: str | None = None
    # Auth: API keys accepted (x-api-key) and IAM credentials whose SigV4 signatures verify.
    api_keys: tuple[str, ...] = ()
    # When a key of `api_keys` expires (epoch seconds; a key absent here never does).
    api_key_expiry: Mapping[str, float] = field(default_factory=dict)
    iam_credentials: Mapping[str, str] = field(default_factory=dict)
    # Signs pagination tokens; every instance of a deployment must share it.
    token_secret: str | None = None
    data_dir: Path = Path(".hemisphere")
    log_level: str = "INFO"
    # What `hemisphere api` does at start besides serving (serve always does both).
    seed_demo_data: bool = False
    rebuild_projections: bool = False
    # How long a stop may take (SIGTERM to exit), and how long start-up waits for backends.
    shutdown_timeout_seconds: float = 10.0
    startup_timeout_seconds: float = 60.0
    # Several regions (regions.control, regions.replication): every region's AWS endpoint,
    # so writes follow the primary the replicated control item names without a restart; the
    # epoch this process acts under when it is the primary (None: the one its database or
    # control item names for it, else 1); the replicator's targets and status port.
    region_endpoints: Mapping[str, str] = field(default_factory=dict)
    # Every region's PostgreSQL as this region reaches it: catalog writes go to the primary's
    # (the stand-in for Aurora's write forwarding), whichever region that is now.
    region_database_urls: Mapping[str, str] = field(default_factory=dict)
    epoch: int | None = None
    replica_endpoints: Mapping[str, str] = field(default_factory=dict)
    replicator_status_port: int | None = None
    # AppSync's API limits (schema.limits): query depth (0: none), resolvers a request may
    # invoke (0: none; AppSync's default 10,000), introspection, request body size.
    query_depth_limit: int = 0
    resolver_count_limit: int = 10_000
    introspection: bool = True
    max_request_bytes: int = 1_048_576
    # The regional read cache (projections.read_cache): items, list pages and whole query
    # responses kept exact by the change stream's publications; on wherever this instance
    # hears them (a stream publisher runs for its region).
    read_cache: bool = True
    # The projector publishes what it wrote to the region's broker at once (projections.
    # announcer); false: the writing region's subscribers hear changes through the stream only.
    announce_writes: bool = True
    # Per-caller rate limits (hemisphere.http.rate_limits), each (per second, burst) or None.
    rate_limit_per_address: tuple[float, int] | None = None
    rate_limit_per_api_key: tuple[float, int] | None = None
    rate_limit_per_identity: tuple[float, int] | None = None
    # Tokens (hemisphere.http.jwt_auth): an OpenID Connect issuer, and/or a Cognito user
    # pool. `local_issuer`: this process is the issuer (serve's development default).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_customer_claim: str = "sub"
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    cognito_jwks_url: str | None = None
    local_issuer: bool = False
    # AWS_LAMBDA (hemisphere.http.lambda_authorizer): the authorizer is a Lambda function
    # (production) or an HTTP endpoint receiving the same JSON (locally); how long its
    # answers are cached by default (0: not at all); AppSync's identityValidationExpression;
    # the apiId the authorizer's requestContext names.
    lambda_authorizer_arn: str | None = None
    lambda_authorizer_url: str | None = None
    lambda_authorizer_ttl_seconds: int = 0
    lambda_authorizer_token_regex: str | None = None
    appsync_api_id: str = "hemisphere"
    # Telemetry (hemisphere.metrics, hemisphere.logs, hemisphere.tracing): Prometheus /metrics
    # (on the API's own port, on a port of its own, or off), log lines as text or JSON, and
    # OpenTelemetry traces exported over OTLP/HTTP (off unless an endpoint is set).
    metrics_enabled: bool = True
    metrics_port: int | None = None
    log_format: str = "text"
    otlp_endpoint: str | None = None
    service_name: str = "hemisphere"

    def current_api_key(self, now: float | None = None) -> str:
        """The first key that has not expired: the one to print and to probe with."""
        return current_api_key(self.api_keys, self.api_key_expiry, now)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        region = get("HEMISPHERE_REGION") or get("AWS_REGION") or "us-east-1"
        primary = get("HEMISPHERE_PRIMARY_REGION") or region
        for name, value in (("HEMISPHERE_REGION", region), ("HEMISPHERE_PRIMARY_REGION", primary)):
            if not _REGION.match(value):
                raise SettingsError(f"{name}={value!r} is not an AWS region name like us-east-1")

        def url(name: str, schemes: tuple[str, ...], example: str) -> str | None:
            return _url(name, get(name), schemes, example)

        http = ("http", "https")
        return cls(
            database_url=url(
                "DATABASE_URL",
                ("postgresql", "postgres"),
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            ),
            aws_endpoint_url=url("AWS_ENDPOINT_URL", http, "http://HOST:PORT"),
            redis_url=url("REDIS_URL", ("redis", "rediss", "unix"), "redis://HOST:PORT/DB"),
            aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            region=region,
            primary_region=primary,
            table_name=_table_name(get("HEMISPHERE_TABLE") or "hemisphere"),
            primary_aws_endpoint_url=url(
                "HEMISPHERE_PRIMARY_AWS_ENDPOINT_URL", http, "http://HOST:PORT"
            ),
            payments_url=url("HEMISPHERE_PAYMENTS_URL", http, "http://HOST:PORT"),
            payments_timeout_seconds=_positive_float(
                "HEMISPHERE_PAYMENTS_TIMEOUT_SECONDS",
                get("HEMISPHERE_PAYMENTS_TIMEOUT_SECONDS"),
                5.0,
            ),
            event_bus_name=get("HEMISPHERE_EVENT_BUS") or "hemisphere",
            state_machine_role_arn=get("HEMISPHERE_STATE_MACHINE_ROLE_ARN")
            or "arn:aws:iam::123456789012:role/hemisphere-sagas",
            publish_url=url("HEMISPHERE_PUBLISH_URL", http, "http://HOST:PORT/graphql"),
            run_workers=_flag("HEMISPHERE_RUN_WORKERS", get("HEMISPHERE_RUN_WORKERS"), True),
            **_api_keys(get("HEMISPHERE_API_KEYS")),
            iam_credentials=_iam_credentials(get("HEMISPHERE_IAM_CREDENTIALS")),
            token_secret=get("HEMISPHERE_TOKEN_SECRET"),
            data_dir=Path(get("HEMISPHERE_DATA_DIR") or ".hemisphere"),
            log_level=_log_level(get("HEMISPHERE_LOG_LEVEL") or "INFO"),
            seed_demo_data=_flag(
                "HEMISPHERE_SEED_DEMO_DATA", get("HEMISPHERE_SEED_DEMO_DATA"), False
            ),
            rebuild_projections=_flag(
                "HEMISPHERE_REBUILD_PROJECTIONS", get("HEMISPHERE_REBUILD_PROJECTIONS"), False
            ),
            shutdown_timeout_seconds=_positive_float(
                "HEMISPHERE_SHUTDOWN_TIMEOUT", get("HEMISPHERE_SHUTDOWN_TIMEOUT"), 10.0
            ),
            startup_timeout_seconds=_positive_float(
                "HEMISPHERE_STARTUP_TIMEOUT", get("HEMISPHERE_STARTUP_TIMEOUT"), 60.0
            ),
            region_endpoints=_endpoints(
                "HEMISPHERE_REGION_ENDPOINTS", get("HEMISPHERE_REGION_ENDPOINTS")
            ),
            region_database_urls=_database_urls(
                "HEMISPHERE_REGION_DATABASE_URLS", get("HEMISPHERE_REGION_DATABASE_URLS")
            ),
            epoch=_positive_int("HEMISPHERE_EPOCH", get("HEMISPHERE_EPOCH")),
            replica_endpoints=_endpoints(
                "HEMISPHERE_REPLICA_ENDPOINTS", get("HEMISPHERE_REPLICA_ENDPOINTS")
            ),
            replicator_status_port=_positive_int(
                "HEMISPHERE_REPLICATOR_STATUS_PORT", get("HEMISPHERE_REPLICATOR_STATUS_PORT")
            ),
            query_depth_limit=_bounded_int(
                "HEMISPHERE_QUERY_DEPTH_LIMIT", get("HEMISPHERE_QUERY_DEPTH_LIMIT"), 0, 0, 75
            ),
            resolver_count_limit=_bounded_int(
                "HEMISPHERE_RESOLVER_COUNT_LIMIT",
                get("HEMISPHERE_RESOLVER_COUNT_LIMIT"),
                10_000,
                0,
                10_000,
            ),
            introspection=_flag("HEMISPHERE_INTROSPECTION", get("HEMISPHERE_INTROSPECTION"), True),
            read_cache=_flag("HEMISPHERE_READ_CACHE", get("HEMISPHERE_READ_CACHE"), True),
            announce_writes=_flag(
                "HEMISPHERE_ANNOUNCE_WRITES", get("HEMISPHERE_ANNOUNCE_WRITES"), True
            ),
            max_request_bytes=_bounded_int(
                "HEMISPHERE_MAX_REQUEST_BYTES",
                get("HEMISPHERE_MAX_REQUEST_BYTES"),
                1_048_576,
                1_024,
                10_485_760,
            ),
            rate_limit_per_address=_rate(
                "HEMISPHERE_RATE_LIMIT_PER_ADDRESS", get("HEMISPHERE_RATE_LIMIT_PER_ADDRESS")
            ),
            rate_limit_per_api_key=_rate(
                "HEMISPHERE_RATE_LIMIT_PER_API_KEY", get("HEMISPHERE_RATE_LIMIT_PER_API_KEY")
            ),
            rate_limit_per_identity=_rate(
                "HEMISPHERE_RATE_LIMIT_PER_IDENTITY", get("HEMISPHERE_RATE_LIMIT_PER_IDENTITY")
            ),
            oidc_issuer=url("HEMISPHERE_OIDC_ISSUER", http, "https://ISSUER"),
            oidc_client_id=get("HEMISPHERE_OIDC_CLIENT_ID"),
            oidc_customer_claim=get("HEMISPHERE_OIDC_CUSTOMER_CLAIM") or "sub",
            cognito_user_pool_id=_user_pool(get("HEMISPHERE_COGNITO_USER_POOL_ID")),
            cognito_client_id=get("HEMISPHERE_COGNITO_CLIENT_ID"),
            cognito_jwks_url=url("HEMISPHERE_COGNITO_JWKS_URL", http, "https://HOST/jwks.json"),
            **_lambda_authorizer(get),
            **_telemetry(get),
        )


def _endpoints(name: str, raw: str | None) -> dict[str, str]:
    """`REGION=URL[,REGION=URL...]` as a dict."""
    return _by_region(name, raw, ("http", "https"), "http://HOST:PORT")


def _database_urls(name: str, raw: str | None) -> dict[str, str]:
    """`REGION=postgresql://...[,REGION=...]` as a dict."""
    return _by_region(name, raw, ("postgresql", "postgres"), "postgresql://HOST:PORT/DB")


def _by_region(
    name: str, raw: str | None, schemes: tuple[str, ...], example: str
) -> dict[str, str]:
    """`REGION=URL[,REGION=URL...]` of URLs of `schemes` (errors never echo a URL: it may
    hold a password)."""
    urls: dict[str, str] = {}
    for entry in (raw or "").split(","):
        if not entry.strip():
            continue
        region, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not _REGION.match(region):
            raise SettingsError(f"{name} must be REGION={example}[,REGION=...]")
        if region in urls:
            raise SettingsError(f"{name} names {region} twice")
        urls[region] = str(_url(f"{name} ({region})", url, schemes, f"REGION={example}"))
    return urls


def _positive_int(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r} is not a positive whole number")
    return int(raw)


def _user_pool(raw: str | None) -> str | None:
    if raw is not None and not _USER_POOL.match(raw):
        raise SettingsError(
            f"HEMISPHERE_COGNITO_USER_POOL_ID={raw!r} is not a user pool id like us-east-1_AbC123"
        )
    return raw


def _rate(name: str, raw: str | None) -> tuple[float, int] | None:
    """`RATE[:BURST]`: RATE requests a second on average, BURST at once (default 2 x RATE);
    unset or 0: no limit."""
    if raw is None or raw == "0":
        return None
    rate, _, burst = raw.partition(":")
    try:
        per_second = float(rate)
        at_once = int(burst) if burst else max(1, math.ceil(2 * per_second))
    except ValueError:
        per_second, at_once = -1.0, 0
    if not (per_second > 0 and at_once >= 1):
        raise SettingsError(f"{name}={raw!r} is not RATE[:BURST] like 50 or 50:100")
    return per_second, at_once


def _bounded_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    """A whole number in [low, high] (AppSync's own bounds where it has them)."""
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SettingsError(f"{name}={raw!r} is not a whole number from {low} to {high}")
    return int(raw)


def _url(name: str, raw: str | None, schemes: tuple[str, ...], example: str) -> str | None:
    """`raw` if it is a URL of one of `schemes` with a host (or a socket path); the error
    does not repeat the value: a database URL may hold a password."""
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in schemes
        or not (parts.hostname or "host=" in parts.query or parts.scheme == "unix")
    ):
        raise SettingsError(f"{name} is not a URL like {example}")
    return raw


def _table_name(raw: str) -> str:
    if not _TABLE.match(raw):
        raise SettingsError(
            f"HEMISPHERE_TABLE={raw!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
        )
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise SettingsError(f"HEMISPHERE_LOG_LEVEL={raw!r} is not one of {', '.join(_LOG_LEVELS)}")
    return level


def _flag(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not true or false")


def _positive_float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value


def _api_keys(raw: str | None) -> dict[str, Any]:
    """`KEY[@EXPIRY][,...]`: EXPIRY is an ISO-8601 date or date-time (UTC without an offset) or
    epoch seconds. The keys in order, and the expiry of those that have one."""
    name = "HEMISPHERE_API_KEYS"
    keys: list[str] = []
    expiry: dict[str, float] = {}
    for entry in (raw or "").split(","):
        key, sep, when = (part.strip() for part in entry.strip().partition("@"))
        if not key and not sep:
            continue
        if len(key) < 8 or any(c.isspace() for c in key):
            raise SettingsError(f"{name}: each key needs 8+ characters, no spaces")
        if sep:
            expiry[key] = _instant(name, key, when)
        keys.append(key)
    return {"api_keys": tuple(keys), "api_key_expiry": expiry}


def _instant(name: str, key: str, raw: str) -> float:
    """Epoch seconds of `raw`: epoch seconds, or an ISO-8601 date/date-time (UTC if naive)."""
    if raw.isdigit():
        return float(raw)
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise SettingsError(
            f"{name}: the expiry of key {key[:8]}... ({raw!r}) is not epoch seconds nor an "
            "ISO-8601 date/time like 2027-01-31T00:00:00Z"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _lambda_authorizer(get: Callable[[str], str | None]) -> dict[str, Any]:
    """HEMISPHERE_LAMBDA_AUTHORIZER_ARN or _URL (not both), _TTL_SECONDS, _TOKEN_REGEX, and
    HEMISPHERE_APPSYNC_API_ID."""
    arn = get("HEMISPHERE_LAMBDA_AUTHORIZER_ARN")
    url = _url(
        "HEMISPHERE_LAMBDA_AUTHORIZER_URL",
        get("HEMISPHERE_LAMBDA_AUTHORIZER_URL"),
        ("http", "https"),
        "http://HOST:PORT/authorize",
    )
    if arn is not None and not _LAMBDA_ARN.match(arn):
        raise SettingsError(
            f"HEMISPHERE_LAMBDA_AUTHORIZER_ARN={arn!r} is not a Lambda function ARN like "
            "arn:aws:lambda:us-east-1:123456789012:function:NAME"
        )
    if arn is not None and url is not None:
        raise SettingsError(
            "HEMISPHERE_LAMBDA_AUTHORIZER_ARN and HEMISPHERE_LAMBDA_AUTHORIZER_URL are both set: "
            "set one (the function in AWS, or an HTTP endpoint locally)"
        )
    regex = get("HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise SettingsError(
                f"HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX is not a regular expression: {exc}"
            ) from None
    return {
        "lambda_authorizer_arn": arn,
        "lambda_authorizer_url": url,
        "lambda_authorizer_ttl_seconds": _bounded_int(
            "HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS",
            get("HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS"),
            0,
            0,
            MAX_AUTHORIZER_TTL_SECONDS,
        ),
        "lambda_authorizer_token_regex": regex,
        "appsync_api_id": get("HEMISPHERE_APPSYNC_API_ID") or "hemisphere",
    }


def _iam_credentials(raw: str | None) -> dict[str, str]:
    """`AKID:SECRET[,AKID:SECRET…]`: the IAM principals allowed to call @aws_iam fields."""
    if raw is None:
        return {}
    pairs: dict[str, str] = {}
    for entry in raw.split(","):
        akid, sep, secret = entry.strip().partition(":")
        if not sep or not akid or not secret:
            raise SettingsError("HEMISPHERE_IAM_CREDENTIALS must be AKID:SECRET[,AKID:SECRET...]")
        pairs[akid] = secret
    return pairs


def _telemetry(get: Callable[[str], str | None]) -> dict[str, Any]:
    """HEMISPHERE_METRICS=on|off|PORT, HEMISPHERE_LOG_FORMAT=text|json, the OTLP endpoint
    (HEMISPHERE_OTLP_ENDPOINT or OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT) and
    OTEL_SERVICE_NAME."""
    metrics = (get("HEMISPHERE_METRICS") or "on").lower()
    enabled, port = True, None
    if metrics.isdigit() and 0 < int(metrics) < 65536:
        port = int(metrics)
    elif metrics in {"0", "false", "no", "off"}:
        enabled = False
    elif metrics not in {"1", "true", "yes", "on"}:
        raise SettingsError(f"HEMISPHERE_METRICS={metrics!r} is not on, off or a port number")
    log_format = (get("HEMISPHERE_LOG_FORMAT") or "text").lower()
    if log_format not in {"text", "json"}:
        raise SettingsError(f"HEMISPHERE_LOG_FORMAT={log_format!r} is not text or json")
    name = "HEMISPHERE_OTLP_ENDPOINT" if get("HEMISPHERE_OTLP_ENDPOINT") else None
    name = name or "OTEL_EXPORTER_OTLP_ENDPOINT"
    return {
        "metrics_enabled": enabled,
        "metrics_port": port,
        "log_format": log_format,
        "otlp_endpoint": _url(name, get(name), ("http", "https"), "http://HOST:4318"),
        "service_name": get("OTEL_SERVICE_NAME") or "hemisphere",
    }


def current_api_key(
    keys: Sequence[str], expiry: Mapping[str, float], now: float | None = None
) -> str:
    """The first of `keys` that has not expired (the first one if all have: it is refused,
    and says so, rather than nothing being printed)."""
    at = time.time() if now is None else now
    return next((k for k in keys if expiry.get(k, float("inf")) > at), keys[0])
