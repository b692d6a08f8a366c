"""Settings of crosscheck: every environment variable, its default, and the parsed values."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from streams.durations import parse_duration_ms
from streams.errors import ConfigError
from streams.model import Severity
from streams.rulebook import RULEBOOK, THRESHOLDS, CommandMode, RuleSetting

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
    "CROSSCHECK_PG_PORT": "port of the local PostgreSQL of `crosscheck cdc` (15432)",
    "CROSSCHECK_PG_BIN": "directory of PostgreSQL's `postgres` and `initdb` "
    "(/usr/lib/postgresql/15/bin, else the newest there, else PATH)",
    "CROSSCHECK_CONNECT_PORT": "REST port of the local Kafka Connect of `crosscheck cdc` (18083)",
    "CROSSCHECK_CDC_DATABASE": "an existing PostgreSQL database to capture and `simulate --to-db` "
    "into (postgresql://user:password@host:port/dbname); unset: the local one",
    "CROSSCHECK_PARTITIONS": "partition count of every topic `topics create` makes (4)",
    "CROSSCHECK_TOPIC_PREFIX": "prefix put before every topic name ('')",
    "CROSSCHECK_TOPICS": "per-topic name overrides, e.g. payments=pay.v1,orders=ord.v1",
    "CROSSCHECK_SOURCES_FILE": "sources file (TOML) of `crosscheck ingest`: per input the "
    "shop's own topic, its format (json, debezium) and which field is which "
    "(docs/sources.md); `--sources FILE` overrides it (unset: the inputs are the Avro topics)",
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
    "CROSSCHECK_STANDBY_REPLICAS": "warm standby copies of each table partition kept by "
    "other workers of the group (1; no effect with one worker; 0: none)",
    "CROSSCHECK_GROUP_INSTANCE_ID": "static group membership id of this worker (unset: "
    "dynamic); a worker restarted in place with the same id gets its partitions back at once",
    "CROSSCHECK_ALLOW_UNTESTED_FAUST": "1: start a worker even on a faust-streaming or "
    "aiokafka other than the tested one (a warning instead of the refusal; see "
    "docs/faust.md) (unset)",
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
    "CROSSCHECK_CALLBACK_TIMEOUT": "PAYMENT_NOT_APPLIED horizon: how long a succeeded payment "
    "may wait for the order service to mark the order PAID (5m)",
    "CROSSCHECK_RULES_FILE": "rules file (TOML): per rule enabled, severity, threshold and "
    "command mode (docs/rules.md); `--rules FILE` overrides it (unset: every rule on, live)",
    "CROSSCHECK_COMMANDS": "command mode of every rule the rules file does not set one for: "
    "live (to crosscheck.commands), shadow (to crosscheck.commands.shadow, same ids) or off "
    "(live)",
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

def parse_bind(text: str, name: str = "bind address") -> str:
    """An IP address to listen on (IPv4 or IPv6, e.g. 127.0.0.1, 0.0.0.0, ::1), normalised."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not an IP address (e.g. 127.0.0.1 or "
                          "0.0.0.0)") from None


@dataclass(frozen=True)
class RuleConfig:
    """The rule thresholds of the contract's section 4 and the time settings of section 3 (ms),
    the default command mode and the per-rule settings of the rules file.

    The engines read the thresholds as fields; what a rules file sets per rule is asked
    through ``enabled``, ``mode_of``, ``severity_of`` and ``delay_of`` (by type name).
    """

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
    #: PAYMENT_NOT_APPLIED: how long a succeeded payment waits for the order's PAID
    callback_timeout: int = 5 * 60_000
    #: command mode of the rules that do not set their own
    commands: CommandMode = CommandMode.LIVE
    #: what the rules file sets per rule (by type, sorted; only the rules it names)
    per_rule: tuple[RuleSetting, ...] = ()

    @cached_property
    def _settings(self) -> dict[str, RuleSetting]:
        return {s.type: s for s in self.per_rule}

    @cached_property
    def delays(self) -> dict[str, int]:
        """Rule type -> the duration its decision time adds to its trigger (0: none)."""
        result = {}
        for info in RULEBOOK:
            own = self._settings.get(info.type)
            if info.threshold is None:
                result[info.type] = 0
            elif own is not None and own.threshold is not None:
                result[info.type] = own.threshold
            else:
                result[info.type] = getattr(self, info.threshold)
        return result

    def enabled(self, rule_type: str) -> bool:
        """Whether the rule makes decisions at all."""
        own = self._settings.get(rule_type)
        return own is None or own.enabled is None or own.enabled

    def mode_of(self, rule_type: str) -> CommandMode:
        """Where the rule's commands go (live, shadow or off), as decided now."""
        own = self._settings.get(rule_type)
        return self.commands if own is None or own.commands is None else own.commands

    def severity_of(self, rule_type: str, default: Severity) -> Severity:
        """The severity of the rule's mismatches: the rules file's, else ``default``."""
        own = self._settings.get(rule_type)
        return default if own is None or own.severity is None else own.severity

    def delay_of(self, rule_type: str) -> int:
        """The duration the rule's decision time adds to its trigger (its own value in the
        rules file, else the global one; 0 for a rule decided at its trigger)."""
        return self.delays[rule_type]

    def earlier_than(self, old_delays: Mapping[str, int]) -> dict[str, int]:
        """Rule type -> how much earlier its decision time falls than under ``old_delays``
        (the ``delays`` a partition last decided with), for the rules whose duration was
        shortened: their decisions whose new D the watermark has already passed, and the old
        D not yet, were not made (docs/rules.md, changing the rules of a running group)."""
        return {t: old - self.delays[t] for t, old in old_delays.items()
                if t in self.delays and old > self.delays[t]}

    @property
    def horizon(self) -> int:
        """The longest distance between a trigger and its decision time."""
        return max(max(int(getattr(self, name)) for name in THRESHOLDS), *self.delays.values())

    @cached_property
    def effective(self) -> tuple[tuple[str, bool, Severity, CommandMode | None, int], ...]:
        """Per rule, in the contract's order: (type, enabled, severity, command mode (None:
        the rule has no command), delay): what its decisions and commands depend on."""
        return tuple((info.type, self.enabled(info.type),
                      self.severity_of(info.type, info.severity),
                      self.mode_of(info.type) if info.command else None,
                      self.delays[info.type]) for info in RULEBOOK)

    @cached_property
    def shadowed(self) -> tuple[str, ...]:
        """The rules (on, with a command) whose commands go to the shadow topic."""
        return tuple(t for t, on, _, mode, _ in self.effective
                     if on and mode is CommandMode.SHADOW)

    @cached_property
    def version(self) -> str:
        """A short stable hash of ``effective``: equal for two configurations whose rules
        decide and command alike, whatever file or variables they came from."""
        text = json.dumps([[t, e, s.value, m.value if m else None, d]
                           for t, e, s, m, d in self.effective], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


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
    "callback_timeout": "CROSSCHECK_CALLBACK_TIMEOUT",
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
    #: the rules file the rules were read from (None: none)
    rules_file: Path | None = None

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
        fields: dict[str, Any] = dict(changes)
        return replace(self, rules=replace(self.rules, **fields))


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


def parse_mode(text: str, name: str = "commands") -> CommandMode:
    """A command mode: live, shadow or off (in any case)."""
    try:
        return CommandMode(text.strip().lower())
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not live, shadow or off") from None


def load_rules(env: Mapping[str, str], rules_file: Path | None = None
               ) -> tuple[RuleConfig, Path | None]:
    """The rule settings and the rules file they were read from: the built-in defaults, then
    the rules file (``rules_file``, else CROSSCHECK_RULES_FILE), then the environment
    variables (which replace the file's global values, not what it sets for one rule)."""
    from streams.rulesfile import load_rules_file

    if rules_file is None and env.get("CROSSCHECK_RULES_FILE"):
        rules_file = Path(env["CROSSCHECK_RULES_FILE"]).expanduser()
    values: dict[str, Any] = {}
    commands = CommandMode.LIVE
    per_rule: tuple[RuleSetting, ...] = ()
    if rules_file is not None:
        rules_file = rules_file.resolve()
        loaded = load_rules_file(rules_file)
        values.update(loaded.thresholds)
        commands, per_rule = loaded.commands or commands, loaded.per_rule
    for attr, name in RULE_ENV.items():
        if env.get(name):
            values[attr] = parse_duration_ms(env[name], name)
    if env.get("CROSSCHECK_STORM_THRESHOLD"):
        values["storm_threshold"] = _int(env, "CROSSCHECK_STORM_THRESHOLD", 20)
    if env.get("CROSSCHECK_COMMANDS"):
        commands = parse_mode(env["CROSSCHECK_COMMANDS"], "CROSSCHECK_COMMANDS")
    return replace(RuleConfig(commands=commands, per_rule=per_rule), **values), rules_file


def load_settings(env: Mapping[str, str] | None = None,
                  rules_file: Path | None = None) -> Settings:
    """Read the settings from the environment (or the given mapping); ``rules_file``
    replaces CROSSCHECK_RULES_FILE."""
    env = os.environ if env is None else env
    rules, rules_path = load_rules(env, rules_file)
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
        rules=rules,
        rules_file=rules_path,
    )
