"""The CDC stack's configuration: connector and worker properties, the plan from a sources file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from streams.cdc.config import Database, load_cdc_settings, local_database
from streams.cdc.connector import connector_config, render_properties, slot_name, worker_config
from streams.cdc.plan import plan_from_sources, shop_plan
from streams.config import Security
from streams.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sources-shop.toml"


def _config(**changes: object) -> dict[str, str]:
    args: dict[str, object] = {
        "name": "crosscheck-shop", "database": local_database(15432),
        "tables": {"public.payments": "order_id", "public.orders": "order_id"},
        "topic_prefix": "shop", "partitions": 6, "unwrap": False,
    }
    args.update(changes)
    return connector_config(**args)  # type: ignore[arg-type]


def test_changes_are_keyed_by_order_id_as_text_on_the_inputs_partition_count() -> None:
    c = _config()
    assert c["message.key.columns"] == "public.orders:order_id;public.payments:order_id"
    assert c["transforms"] == "orderkey"
    assert c["transforms.orderkey.type"].endswith("ExtractField$Key")
    assert c["transforms.orderkey.field"] == "order_id"
    assert c["topic.creation.default.partitions"] == "6"
    assert c["plugin.name"] == "pgoutput"
    assert c["slot.name"] == c["publication.name"] == "crosscheck_shop"
    assert c["table.include.list"] == r"public\.orders,public\.payments"
    assert c["snapshot.mode"] == "no_data"
    assert c["database.user"] == "crosscheck" and c["database.port"] == "15432"


def test_unwrap_adds_the_fields_the_mapping_reads() -> None:
    c = _config(unwrap=True)
    assert c["transforms"] == "unwrap,orderkey"
    assert c["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    assert c["transforms.unwrap.add.fields"] == "op,table,lsn,source.ts_ms"
    assert "transforms.unwrap.type" not in _config()


def test_tables_keyed_by_differently_named_columns_get_one_key_step_each() -> None:
    c = _config(tables={"public.orders": "id", "public.payments": "order_no",
                        "public.refunds": "order_no"})
    assert c["transforms"] == "orderkey0,orderkey1"
    assert c["transforms.orderkey0.field"] == "id"
    assert c["predicates.orderkey0.pattern"] == r"shop\.public\.orders"
    assert c["transforms.orderkey1.field"] == "order_no"
    assert c["predicates.orderkey1.pattern"] == r"shop\.public\.payments|shop\.public\.refunds"
    assert c["predicates"] == "orderkey0,orderkey1"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="no tables"):
        _config(tables={})
    with pytest.raises(ValueError, match="snapshot mode"):
        _config(snapshot_mode="sometimes")


def test_slot_names_are_what_postgresql_allows() -> None:
    assert slot_name("crosscheck-shop") == "crosscheck_shop"
    assert slot_name("9 Shop.DB") == "crosscheck_9_shop_db"
    assert len(slot_name("x" * 100)) == 63


def test_worker_reads_keys_as_text_and_values_as_plain_json() -> None:
    w = worker_config(bootstrap="127.0.0.1:19092", rest_port=18083,
                      offsets_file=Path("/x/offsets.dat"))
    assert w["key.converter"] == "org.apache.kafka.connect.storage.StringConverter"
    assert w["value.converter.schemas.enable"] == "false"
    assert w["plugin.discovery"] == "service_load"
    assert w["listeners"] == "http://127.0.0.1:18083"
    assert "security.protocol" not in w
    sec = worker_config(bootstrap="b:9093", rest_port=1, offsets_file=Path("o"),
                        security=Security("SASL_SSL", "PLAIN", "u", 'p"w', "/ca.pem"))
    for prefix in ("", "producer.", "admin."):
        assert sec[prefix + "security.protocol"] == "SASL_SSL"
        assert sec[prefix + "sasl.jaas.config"] == ('org.apache.kafka.common.security.plain.'
                                                    'PlainLoginModule required username="u" '
                                                    'password="p\\"w";')
        assert sec[prefix + "ssl.truststore.location"] == "/ca.pem"


def test_properties_escape_backslashes_and_line_breaks() -> None:
    text = render_properties({"a": r"x\.y", "b": "one\ntwo", "c": " lead"}, "header")
    assert text.splitlines() == ["# header", r"a=x\\.y", r"b=one\ntwo", "c=\\ lead"]


def test_database_urls() -> None:
    db = Database.from_url("postgresql://app%40x:p%2Fw@db.example:6543/shop?sslmode=require")
    assert (db.user, db.password, db.host, db.port, db.dbname) == \
        ("app@x", "p/w", "db.example", 6543, "shop")
    assert db.params == (("sslmode", "require"),)
    assert Database.from_url(db.url) == db
    assert "p/w" not in db.shown and "p%2Fw" not in db.shown
    assert _config(database=db)["database.sslmode"] == "require"
    for bad in ("mysql://u@h/db", "postgresql://h/db", "postgresql://u@h/", "postgresql://u@h:x/d"):
        with pytest.raises(ConfigError):
            Database.from_url(bad)


def test_settings_from_the_environment() -> None:
    s = load_cdc_settings({})
    assert (s.pg_port, s.connect_port, s.external) == (15432, 18083, None)
    assert s.database == local_database(15432)
    s = load_cdc_settings({"CROSSCHECK_PG_PORT": "5999", "CROSSCHECK_CONNECT_PORT": "8099",
                           "CROSSCHECK_CDC_DATABASE": "postgresql://u:p@h/d"})
    assert (s.pg_port, s.connect_port) == (5999, 8099)
    assert s.database == Database("h", 5432, "d", "u", "p") and not s.uses_local_database
    with pytest.raises(ConfigError, match="CROSSCHECK_PG_PORT"):
        load_cdc_settings({"CROSSCHECK_PG_PORT": "70000"})


def test_the_example_sources_file_is_the_default_plan() -> None:
    assert plan_from_sources(EXAMPLE) == shop_plan("")
    plan = shop_plan("t1.")
    assert plan.topic_prefix == "t1.shop"
    assert plan.topics["public.payments"] == "t1.shop.public.payments"
    assert set(plan.tables) == {"public.orders", "public.payments", "public.reservations",
                                "public.shipments"}


def _sources(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


SHOP = EXAMPLE.read_text(encoding="utf-8")


def test_a_plan_from_a_sources_file(tmp_path: Path) -> None:
    text = SHOP.replace('topic = "shop.', 'topic = "db1.').replace(
        'format = "debezium"', 'format = "debezium"\nunwrap = true').replace(
        'name = "crosscheck-shop"', 'name = "billing"\nsnapshot_mode = "initial"').replace(
        'order_id = "order_id"\npayment_id', 'order_id = "order_no"\npayment_id')
    plan = plan_from_sources(_sources(tmp_path, text))
    assert (plan.name, plan.topic_prefix, plan.unwrap, plan.snapshot_mode) == \
        ("billing", "db1", True, "initial")
    assert dict(plan.tables) == {"public.orders": "order_id", "public.payments": "order_no",
                                 "public.reservations": "order_id",
                                 "public.shipments": "order_id"}


def test_json_inputs_are_not_captured(tmp_path: Path) -> None:
    json_only = (ROOT / "examples" / "sources-json.toml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="nothing to capture"):
        plan_from_sources(_sources(tmp_path, json_only))


@pytest.mark.parametrize(("old", "new", "reason"), [
    ('topic = "shop.public.orders"', 'topic = "shop.orders"',
     r"sources.toml:10: \[inputs.orders\] table: not given"),
    ('topic = "shop.public.orders"', 'topic = "orders"\ntable = "public.orders"',
     "not a change-event topic"),
    ('topic = "shop.public.orders"', 'topic = "shop.public.orders"\ntable = "public.o"',
     "does not end so"),
    ('order_id = "order_id"\nuser_id', 'order_id = "doc.id"\nuser_id',
     "order_id must be a column"),
    ('topic = "shop.public.payments"', 'topic = "b.public.payments"', "one topic prefix"),
    ('topic = "shop.public.payments"\nformat = "debezium"',
     'topic = "shop.public.payments"\nformat = "debezium"\nunwrap = true',
     "unwraps every table or none"),
    ('name = "crosscheck-shop"', 'slot = "x"', "unknown key 'slot'"),
    ('name = "crosscheck-shop"', 'snapshot_mode = "never"', "snapshot_mode"),
    ("[inputs.orders]", "[inputs.orders", "sources.toml"),
    ('format = "debezium"\norder_id = "order_id"\nuser_id',
     'format = "debezium"\nuser_id', "order_id"),
])
def test_sources_files_one_connector_cannot_serve_are_refused(tmp_path: Path, old: str,
                                                              new: str, reason: str) -> None:
    assert old in SHOP
    with pytest.raises(ConfigError, match=reason):
        plan_from_sources(_sources(tmp_path, SHOP.replace(old, new, 1)))


def test_the_example_file_parses_as_toml_with_every_input_captured() -> None:
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(doc["inputs"]) == {"orders", "payments", "inventory", "shipping"}
    assert all(spec["format"] == "debezium" for spec in doc["inputs"].values())
