"""Settings from the environment: durations, integers, overrides; bad values name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.config import (
    DEFAULT_BROKER_PORT,
    ENV_VARS,
    RULE_ENV,
    RuleConfig,
    Settings,
    load_settings,
)
from streams.durations import format_duration_ms, parse_duration_ms
from streams.errors import ConfigError


@pytest.mark.parametrize(("text", "ms"), [
    ("500ms", 500), ("60s", 60_000), ("15m", 900_000), ("24h", 86_400_000),
    ("1d", 86_400_000), ("10", 10_000), ("1.5s", 1_500), ("0", 0), (" 5 m ", 300_000),
    ("0.5m", 30_000), ("2h", 7_200_000),
])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "-1s", "5x", "1 5s", "s", "1e3", "15 minutes"])
def test_bad_durations_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^CROSSCHECK_TCC_GRACE: .* is not a duration"):
        parse_duration_ms(text, "CROSSCHECK_TCC_GRACE")


@pytest.mark.parametrize(("ms", "text"), [
    (86_400_000, "1d"), (3_600_000, "1h"), (900_000, "15m"), (60_000, "1m"), (90_000, "90s"),
    (1_500, "1500ms"), (0, "0ms"), (1, "1ms"),
])
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text
    assert parse_duration_ms(text) == ms


def test_defaults_of_an_empty_environment() -> None:
    s = load_settings({})
    assert s.bootstrap_servers is None and s.uses_local_broker
    assert s.bootstrap == f"127.0.0.1:{DEFAULT_BROKER_PORT}"
    assert s.partitions == 4
    assert s.topic_prefix == "" and dict(s.topic_overrides) == {}
    assert s.app_id == "crosscheck"
    assert s.processing_guarantee == "exactly_once"
    assert s.worker_port == 6066
    assert s.schema_registry_url is None
    assert s.home == Path.home() / ".crosscheck"
    assert s.rules == RuleConfig()


def test_rule_defaults_are_the_contracts() -> None:
    r = RuleConfig()
    assert (r.allowed_lateness, r.idle_timeout) == (60_000, 10_000)
    assert r.payment_timeout == 15 * 60_000
    assert r.reservation_timeout == 5 * 60_000
    assert r.shipment_timeout == 24 * 3_600_000
    assert r.payment_grace == 2 * 60_000
    assert r.release_timeout == 10 * 60_000
    assert r.tcc_grace == 60_000
    assert r.metrics_window == 60_000
    assert r.storm_threshold == 20
    assert r.horizon == 24 * 3_600_000


def test_every_variable_is_documented() -> None:
    assert set(RULE_ENV.values()) <= set(ENV_VARS)
    assert "CROSSCHECK_STORM_THRESHOLD" in ENV_VARS
    for name in ENV_VARS:
        assert name.isupper() and ENV_VARS[name]


def test_values_from_the_environment(tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "CROSSCHECK_HOME": str(tmp_path),
        "CROSSCHECK_BROKER_PORT": "29092",
        "CROSSCHECK_PARTITIONS": "12",
        "CROSSCHECK_TOPIC_PREFIX": "prod.",
        "CROSSCHECK_TOPICS": " payments = pay.v1 , orders=ord.v1,",
        "CROSSCHECK_APP_ID": "cc-prod",
        "CROSSCHECK_PROCESSING_GUARANTEE": "at_least_once",
        "CROSSCHECK_PAYMENT_TIMEOUT": "20m",
        "CROSSCHECK_ALLOWED_LATENESS": "30s",
        "CROSSCHECK_IDLE_TIMEOUT": "2500ms",
        "CROSSCHECK_STORM_THRESHOLD": "50",
        "SCHEMA_REGISTRY_URL": "http://sr:8081",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "hunter2",
    }
    s = load_settings(env)
    assert s.bootstrap == "k1:9092,k2:9092" and not s.uses_local_broker
    assert s.home == tmp_path
    assert s.broker_port == 29092
    assert s.partitions == 12
    assert s.topic_prefix == "prod."
    assert dict(s.topic_overrides) == {"payments": "pay.v1", "orders": "ord.v1"}
    assert s.app_id == "cc-prod"
    assert s.processing_guarantee == "at_least_once"
    assert s.rules.payment_timeout == 20 * 60_000
    assert s.rules.allowed_lateness == 30_000
    assert s.rules.idle_timeout == 2_500
    assert s.rules.storm_threshold == 50
    assert s.rules.tcc_grace == 60_000
    assert s.schema_registry_url == "http://sr:8081"
    assert s.security.protocol == "SASL_SSL"
    assert s.security.sasl_username == "svc"
    assert "hunter2" not in repr(s)


def test_empty_values_mean_unset() -> None:
    s = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "", "CROSSCHECK_PARTITIONS": "",
                       "CROSSCHECK_PAYMENT_TIMEOUT": "", "CROSSCHECK_APP_ID": ""})
    assert s.bootstrap_servers is None
    assert s.partitions == 4
    assert s.rules.payment_timeout == 15 * 60_000
    assert s.app_id == "crosscheck"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CROSSCHECK_PARTITIONS", "four", "'four' is not an integer"),
    ("CROSSCHECK_PARTITIONS", "0", "must be at least 1"),
    ("CROSSCHECK_BROKER_PORT", "-5", "must be at least 1"),
    ("CROSSCHECK_WORKER_PORT", "1.5", "is not an integer"),
    ("CROSSCHECK_STORM_THRESHOLD", "many", "is not an integer"),
    ("CROSSCHECK_PAYMENT_TIMEOUT", "soon", "is not a duration"),
    ("CROSSCHECK_METRICS_WINDOW", "1 minute", "is not a duration"),
    ("CROSSCHECK_IDLE_TIMEOUT", "-10s", "is not a duration"),
    ("CROSSCHECK_PROCESSING_GUARANTEE", "exactly-once", "is not exactly_once or at_least_once"),
    ("CROSSCHECK_TOPICS", "payments", "is not of the form topic=name"),
    ("CROSSCHECK_TOPICS", "payments=", "is not of the form topic=name"),
    ("CROSSCHECK_TOPICS", "=x", "is not of the form topic=name"),
])
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    assert str(info.value).startswith(f"{name}: ")
    assert message in str(info.value)


def test_every_rule_variable_is_read() -> None:
    for attr, name in RULE_ENV.items():
        s = load_settings({name: "7s"})
        assert getattr(s.rules, attr) == 7_000


def test_with_rules_replaces_only_the_given_thresholds() -> None:
    s = Settings().with_rules(payment_timeout=1_000, tcc_grace=5)
    assert s.rules.payment_timeout == 1_000 and s.rules.tcc_grace == 5
    assert s.rules.reservation_timeout == RuleConfig().reservation_timeout
    assert Settings().rules.payment_timeout == 15 * 60_000


def test_home_expands_the_user() -> None:
    assert load_settings({"CROSSCHECK_HOME": "~/cc"}).home == Path.home() / "cc"


def test_the_readme_table_is_the_list_of_variables() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.+) \|$", section, re.MULTILINE)
    assert dict(rows) == ENV_VARS
    assert [name for name, _ in rows] == list(ENV_VARS)
