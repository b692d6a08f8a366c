"""Change-event topics of databases captured by Debezium (prefix.schema.table); the example shop."""

from __future__ import annotations

from topology.topics import TopicId

#: topic.prefix of the example shop's connector (before CROSSCHECK_TOPIC_PREFIX is applied)
SHOP_TOPIC_PREFIX = "shop"
#: the PostgreSQL schema of the example shop's tables
SHOP_SCHEMA = "public"
#: input -> the example shop's table holding that service's rows
SHOP_TABLES: dict[TopicId, str] = {
    TopicId.ORDERS: "orders",
    TopicId.PAYMENTS: "payments",
    TopicId.INVENTORY: "reservations",
    TopicId.SHIPPING: "shipments",
}


def change_topic(prefix: str, table: str) -> str:
    """The topic Debezium writes the changes of ``table`` ("schema.table") to."""
    return f"{prefix}.{table}"


def split_change_topic(topic: str) -> tuple[str, str]:
    """(topic.prefix, "schema.table") of a change-event topic: its last two parts are the
    table. ValueError when the topic has fewer than three parts."""
    parts = topic.split(".")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{topic!r} is not a change-event topic name (prefix.schema.table)")
    return ".".join(parts[:-2]), ".".join(parts[-2:])


def shop_topics(prefix: str = SHOP_TOPIC_PREFIX) -> dict[TopicId, str]:
    """Input -> change-event topic of the example shop's table for it."""
    return {tid: change_topic(prefix, f"{SHOP_SCHEMA}.{table}")
            for tid, table in SHOP_TABLES.items()}
