"""Settings of crosscheck: every environment variable, its default, and the parsed values."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from streams.errors import ConfigError

DEFAULT_BROKER_PORT = 19092
DEFAULT_WORKER_BIND = "127.0.0.1"

#: Every environment variable crosscheck reads, with its meaning (the README's table).
ENV_VARS: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "Use this Kafka cluster instead of the local broker (host:port,...)",
    "KAFKA_SECURITY_PROTOCOL": "security.protocol for every client (PLAINTEXT, SSL, SASL_SSL, ...)",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
    "KAFKA_SASL_USERNAME": "SASL user name",
    "KAFKA_SASL_PASSWORD": "SASL password (never logged)",
    "KAFKA_SSL_CA_LOCATION": "path of the CA certificate file for SSL",
    "SCHEMA_REGISTRY_URL": "Confluent-compatible Schema Registry; unset: the local registry",
    "SCHEMA_REGISTRY_BASIC_AUTH": "user:password for the Schema Registry (never logged)",
    "CROSSCHECK_HOME": "data directory: broker jars, broker data, worker state (~/.crosscheck)",
    "CROSSCHECK_BROKER_PORT": f"port of the local broker ({DEFAULT_BROKER_PORT}; controller: +1)",
    "CROSSCHECK_BROKER_HEAP": "JVM heap of the local broker (512m)",
    "CROSSCHECK_PARTITIONS": "partition count of every topic `topics create` makes (4)",
    "CROSSCHECK_TOPIC_PREFIX": "prefix put before every topic name ('')",
    "CROSSCHECK_TOPICS": "per-topic name overrides, e.g. payments=pay.v1,orders=ord.v1",
    "CROSSCHECK_APP_ID": "Faust app id / consumer group; prefixes changelog topics (crosscheck)",
    "CROSSCHECK_PROCESSING_GUARANTEE": "exactly_once (default) or at_least_once",
    "CROSSCHECK_WORKER_PORT": "port of the worker's web server (6066)",
    "CROSSCHECK_WORKER_BIND": "IP address the worker's web server listens on (127.0.0.1: this "
    "host only; 0.0.0.0 or :: for every interface)",
    "CROSSCHECK_WORKER_CONSUME": "how input records reach a worker's rules: batch (in batches "
    "below Faust's per-record stream) or stream (Faust's stream, the A/B baseline) (batch)",
    "CROSSCHECK_COMMIT_INTERVAL": "seconds between a worker's commits; under exactly-once "
    "outputs become readable at the commit, so this bounds decision latency "
    "(0.1; at-least-once: 2.8)",
    "CROSSCHECK_ALLOWED_LATENESS": "watermark lag behind the slowest input (60s)",
    "CROSSCHECK_IDLE_TIMEOUT": "wall time with no record after which a caught-up input "
    "(lag known to be zero) is quiet; when every input of a partition is quiet the end of "
    "the traffic is decided (10s)",
    "CROSSCHECK_SOURCE_HOLD": "wall time a stalled input (quiet while another input of its "
    "partition advances) holds the rules that read it; then SOURCE_STALLED, and decisions go "
    "on without it, their commands held until it confirms them (10m)",
    "CROSSCHECK_PAYMENT_TIMEOUT": "RESERVATION_WITHOUT_PAYMENT horizon (15m)",
    "CROSSCHECK_RESERVATION_TIMEOUT": "PAYMENT_WITHOUT_RESERVATION horizon (5m)",
    "CROSSCHECK_SHIPMENT_TIMEOUT": "PAID_NOT_SHIPPED horizon (24h)",
    "CROSSCHECK_PAYMENT_GRACE": "SHIPPED_WITHOUT_PAYMENT horizon (2m)",
    "CROSSCHECK_RELEASE_TIMEOUT": "REFUND_WITHOUT_RELEASE horizon (10m)",
    "CROSSCHECK_TCC_GRACE": "TCC_EMPTY_ROLLBACK and OVERSHIPMENT horizon (1m)",
    "CROSSCHECK_METRICS_WINDOW": "tumbling event-time window of the metrics stream (1m)",
    "CROSSCHECK_STATE_RETENTION": "an order's history is kept until no event came for this "
    "long in event time, and every decision is made (7d)",
    "CROSSCHECK_STORM_THRESHOLD": "mismatches of one type per window above which one STORM "
    "alert replaces the single ones (20)",
    "CROSSCHECK_MALLOC_ARENAS": "glibc malloc arenas of a worker, unless `MALLOC_ARENA_MAX` "
    "is set (2)",
    "CROSSCHECK_MALLOC_TRIM_EVERY": "seconds between a worker's `malloc_trim(0)`, which gives "
    "free heap memory back to the kernel (60; 0: never)",
    "CROSSCHECK_PURE_PYTHON": "1: run the Python engine instead of the native one (Rust); same "
    "outputs, slower (unset)",
    "CROSSCHECK_PYTHON_ENGINE": "1: the same as CROSSCHECK_PURE_PYTHON (unset)",
}

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration_ms(text: str, name: str = "duration") -> int:
    """Parse '15m', '60s', '500ms', '24h', '1d' or a bare number of seconds into milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{name}: {text!r} is not a duration (examples: 500ms, 60s, 15m, 24h)")
    value, unit = match.groups()
    return int(float(value) * _UNITS_MS[unit or "s"])


def parse_bind(text: str, name: str = "bind address") -> str:
    """An IP address to listen on (IPv4 or IPv6, e.g. 127.0.0.1, 0.0.0.0, ::1), normalised."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not an IP address (e.g. 127.0.0.1 or "
                          "0.0.0.0)") from None


def format_duration_ms(ms: int) -> str:
    """Render milliseconds with the largest unit that divides them (for help texts)."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class RuleConfig:
    """The rule thresholds of the contract's section 4 and the time settings of section 3 (ms)."""

    allowed_lateness: int = 60_000
    idle_timeout: int = 10_000
    #: how long a stalled input holds the watermark before the decisions go on without it
    source_hold: int = 10 * 60_000
    payment_timeout: int = 15 * 60_000
    reservation_timeout: int = 5 * 60_000
    shipment_timeout: int = 24 * 3_600_000
    payment_grace: int = 2 * 60_000
    release_timeout: int = 10 * 60_000
    tcc_grace: int = 60_000
    metrics_window: int = 60_000
    storm_threshold: int = 20
    #: an order's history is kept until its last event is this old (and every decision made)
    state_retention: int = 7 * 86_400_000

    @property
    def horizon(self) -> int:
        """The longest distance between a trigger and its decision time."""
        return max(
            self.payment_timeout,
            self.reservation_timeout,
            self.shipment_timeout,
            self.payment_grace,
            self.release_timeout,
            self.tcc_grace,
        )


#: RuleConfig field -> environment variable.
RULE_ENV = {
    "allowed_lateness": "CROSSCHECK_ALLOWED_LATENESS",
    "idle_timeout": "CROSSCHECK_IDLE_TIMEOUT",
    "source_hold": "CROSSCHECK_SOURCE_HOLD",
    "payment_timeout": "CROSSCHECK_PAYMENT_TIMEOUT",
    "reservation_timeout": "CROSSCHECK_RESERVATION_TIMEOUT",
    "shipment_timeout": "CROSSCHECK_SHIPMENT_TIMEOUT",
    "payment_grace": "CROSSCHECK_PAYMENT_GRACE",
    "release_timeout": "CROSSCHECK_RELEASE_TIMEOUT",
    "tcc_grace": "CROSSCHECK_TCC_GRACE",
    "metrics_window": "CROSSCHECK_METRICS_WINDOW",
    "state_retention": "CROSSCHECK_STATE_RETENTION",
}


@dataclass(frozen=True)
class Security:
    """Client security settings read from the environment; secrets are kept out of repr()."""

    protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, read once from the environment."""

    bootstrap_servers: str | None = None
    home: Path = Path.home() / ".crosscheck"
    broker_port: int = DEFAULT_BROKER_PORT
    broker_heap: str = "512m"
    partitions: int = 4
    topic_prefix: str = ""
    topic_overrides: Mapping[str, str] = field(default_factory=dict)
    app_id: str = "crosscheck"
    processing_guarantee: str = "exactly_once"
    worker_port: int = 6066
    #: the worker's web server listens here (loopback only unless told otherwise)
    worker_bind: str = DEFAULT_WORKER_BIND
    schema_registry_url: str | None = None
    schema_registry_auth: str | None = field(default=None, repr=False)
    security: Security = field(default_factory=Security)
    rules: RuleConfig = field(default_factory=RuleConfig)

    @property
    def uses_local_broker(self) -> bool:
        """True when no external cluster is configured."""
        return self.bootstrap_servers is None

    @property
    def bootstrap(self) -> str:
        """The bootstrap address every client connects to."""
        return self.bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    def with_rules(self, **changes: int) -> Settings:
        """A copy with some rule thresholds replaced."""
        return replace(self, rules=replace(self.rules, **changes))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"{name}: must be at least 1, got {value}")
    return value


def _overrides(raw: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"CROSSCHECK_TOPICS: {part!r} is not of the form topic=name")
        result[key.strip()] = value.strip()
    return result


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or the given mapping)."""
    env = os.environ if env is None else env
    rule_values: dict[str, int] = {}
    for attr, name in RULE_ENV.items():
        if env.get(name):
            rule_values[attr] = parse_duration_ms(env[name], name)
    if env.get("CROSSCHECK_STORM_THRESHOLD"):
        rule_values["storm_threshold"] = _int(env, "CROSSCHECK_STORM_THRESHOLD", 20)
    guarantee = env.get("CROSSCHECK_PROCESSING_GUARANTEE") or "exactly_once"
    if guarantee not in ("exactly_once", "at_least_once"):
        raise ConfigError(
            f"CROSSCHECK_PROCESSING_GUARANTEE: {guarantee!r} is not exactly_once or at_least_once"
        )
    home = Path(env.get("CROSSCHECK_HOME") or Path.home() / ".crosscheck").expanduser()
    return Settings(
        bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        home=home,
        broker_port=_int(env, "CROSSCHECK_BROKER_PORT", DEFAULT_BROKER_PORT),
        broker_heap=env.get("CROSSCHECK_BROKER_HEAP") or "512m",
        partitions=_int(env, "CROSSCHECK_PARTITIONS", 4),
        topic_prefix=env.get("CROSSCHECK_TOPIC_PREFIX", ""),
        topic_overrides=_overrides(env.get("CROSSCHECK_TOPICS", "")),
        app_id=env.get("CROSSCHECK_APP_ID") or "crosscheck",
        processing_guarantee=guarantee,
        worker_port=_int(env, "CROSSCHECK_WORKER_PORT", 6066),
        worker_bind=parse_bind(env.get("CROSSCHECK_WORKER_BIND") or DEFAULT_WORKER_BIND,
                               "CROSSCHECK_WORKER_BIND"),
        schema_registry_url=env.get("SCHEMA_REGISTRY_URL") or None,
        schema_registry_auth=env.get("SCHEMA_REGISTRY_BASIC_AUTH") or None,
        security=Security(
            protocol=env.get("KAFKA_SECURITY_PROTOCOL") or None,
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or None,
            sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
            ssl_ca_location=env.get("KAFKA_SSL_CA_LOCATION") or None,
        ),
        rules=RuleConfig(**rule_values),
    )
