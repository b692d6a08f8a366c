"""Topic definitions and name resolution: prefix, overrides, unknown overrides, ids."""

from __future__ import annotations

import pytest

from schemas.catalog import schemas
from streams.errors import ConfigError
from topology.topics import (
    BY_ID,
    INPUTS,
    ORDER_GROUP,
    TOPICS,
    TopicId,
    Topology,
    command_topic,
)

DEFAULT_NAMES = {
    TopicId.ORDERS: "orders",
    TopicId.PAYMENTS: "payments",
    TopicId.INVENTORY: "inventory",
    TopicId.SHIPPING: "shipping",
    TopicId.MISMATCHES: "crosscheck.mismatches",
    TopicId.COMMANDS: "crosscheck.commands",
    TopicId.COMMANDS_SHADOW: "crosscheck.commands.shadow",
    TopicId.ALERTS: "crosscheck.alerts",
    TopicId.METRICS: "crosscheck.metrics",
    TopicId.DLQ: "crosscheck.dlq",
}


def test_default_names_are_the_contracts() -> None:
    topo = Topology()
    for topic, name in DEFAULT_NAMES.items():
        assert topo.name(topic) == name


def test_every_topic_id_has_one_definition() -> None:
    assert set(BY_ID) == set(TopicId)
    assert len(TOPICS) == len(TopicId)
    assert len({t.default_name for t in TOPICS}) == len(TOPICS)


def test_inputs_are_co_partitioned_by_order_id() -> None:
    assert INPUTS == (TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING)
    for topic in INPUTS:
        assert BY_ID[topic].copartition_group == ORDER_GROUP
        assert BY_ID[topic].key == "order_id"
        assert BY_ID[topic].partitions is None


def test_shadow_commands_have_the_command_topics_layout() -> None:
    for live, shadow in ((TopicId.COMMANDS, TopicId.COMMANDS_SHADOW),
                         (TopicId.BACKFILL_COMMANDS, TopicId.BACKFILL_COMMANDS_SHADOW)):
        a, b = BY_ID[live], BY_ID[shadow]
        assert (b.key, b.value_schema, b.copartition_group, b.partitions, b.retention_ms) == \
            (a.key, a.value_schema, a.copartition_group, a.partitions, a.retention_ms)
        assert b.default_name == a.default_name + ".shadow"
    assert command_topic(False) is TopicId.COMMANDS
    assert command_topic(True) is TopicId.COMMANDS_SHADOW
    assert command_topic(False, backfill=True) is TopicId.BACKFILL_COMMANDS
    assert command_topic(True, backfill=True) is TopicId.BACKFILL_COMMANDS_SHADOW
    assert Topology().topic_id("crosscheck.commands.shadow") is TopicId.COMMANDS_SHADOW
    assert Topology().topic_id("commands.shadow") is TopicId.COMMANDS_SHADOW


def test_value_schemas_exist() -> None:
    for t in TOPICS:
        if t.encoding == "avro":
            assert t.value_schema in schemas()
    assert {t: BY_ID[t].value_schema for t in INPUTS} == {
        TopicId.ORDERS: "OrderEvent", TopicId.PAYMENTS: "PaymentEvent",
        TopicId.INVENTORY: "InventoryEvent", TopicId.SHIPPING: "ShippingEvent",
    }


def test_prefix_goes_before_every_name() -> None:
    topo = Topology(prefix="staging.")
    for topic, name in DEFAULT_NAMES.items():
        assert topo.name(topic) == "staging." + name


def test_overrides_by_id_or_default_name_win_over_the_prefix() -> None:
    topo = Topology(prefix="p.", overrides={"payments": "pay.v1",
                                            "crosscheck.mismatches": "mm.v2",
                                            "dlq": "dead"})
    assert topo.name(TopicId.PAYMENTS) == "pay.v1"
    assert topo.name(TopicId.MISMATCHES) == "mm.v2"
    assert topo.name(TopicId.DLQ) == "dead"
    assert topo.name(TopicId.ORDERS) == "p.orders"


def test_an_empty_override_keeps_the_default() -> None:
    assert Topology(overrides={"orders": ""}).name(TopicId.ORDERS) == "orders"


def test_unknown_override_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"CROSSCHECK_TOPICS: unknown topic 'paymnts'"):
        Topology(overrides={"paymnts": "x"})


def test_topic_id_by_name_or_id() -> None:
    topo = Topology(prefix="p.", overrides={"payments": "pay.v1"})
    assert topo.topic_id("pay.v1") is TopicId.PAYMENTS
    assert topo.topic_id("payments") is TopicId.PAYMENTS
    assert topo.topic_id("p.orders") is TopicId.ORDERS
    assert topo.topic_id("mismatches") is TopicId.MISMATCHES
    assert topo.topic_id("p.crosscheck.mismatches") is TopicId.MISMATCHES
    with pytest.raises(ConfigError, match="unknown topic 'nope'"):
        topo.topic_id("nope")


def test_by_name_is_a_copy() -> None:
    topo = Topology(prefix="x.")
    names = topo.by_name()
    assert names["x.payments"] is TopicId.PAYMENTS
    names.clear()
    assert topo.by_name()["x.payments"] is TopicId.PAYMENTS


def test_partition_counts() -> None:
    topo = Topology(partitions=12)
    for t in TOPICS:
        assert topo.partitions_of(t.id) == (t.partitions or 12)
    for topic in INPUTS:
        assert topo.partitions_of(topic) == 12


def test_inputs_with_names() -> None:
    topo = Topology(prefix="t.")
    assert list(topo.inputs()) == [(t, "t." + DEFAULT_NAMES[t]) for t in INPUTS]
