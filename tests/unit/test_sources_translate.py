"""The ingest's translation (without Kafka): what it writes for each source record, where, and
what it counts; the start-up advice on partitioning."""

from __future__ import annotations

import json
from collections import Counter

from shop_json import SOURCES_JSON, TOPIC, shop_value

from schemas.codec import Codec
from streams.simulate import FAULTS, SimConfig, generate
from streams.sources import RawRecord, load_sources, parse_sources
from streams.sources.checks import Layout, moved_advice, not_copartitioned
from streams.sources.ingest import Translator
from streams.sources.stats import IngestStats, StatsCollector
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId, Topology

TOPOLOGY = Topology(4, "t.")
LAYOUT = Layout(inputs=4, dlq=2, sources={})


def translator(stats: IngestStats, warnings: list[str] | None = None) -> Translator:
    return Translator(load_sources(SOURCES_JSON), TOPOLOGY, LAYOUT, Codec(), stats,
                      clock=lambda: 123, warn=None if warnings is None else warnings.append)


def test_events_go_to_their_orders_partition_of_the_contract_topic() -> None:
    stats = IngestStats()
    codec = Codec()
    events = generate(SimConfig(orders=40, seed=3, faults=dict.fromkeys(FAULTS, 0.05)))
    records = [RawRecord(TOPIC[topic], partition_for(r["order_id"], 4), offset, r["order_id"].
                         encode(), shop_value(topic, r)) for offset, (topic, r) in
               enumerate(events)]
    outs = translator(stats).translate(records)
    assert len(outs) == len(events)
    for out, (topic, record) in zip(outs, events, strict=True):
        assert out.topic == TOPOLOGY.name(topic)
        assert out.key == record["order_id"].encode()
        assert out.partition == partition_for(record["order_id"], 4)
        assert codec.decode_as(BY_ID[topic].value_schema, out.value) == record
    by_input = Counter(t.value for t, _ in events)
    assert stats.read == by_input and stats.mapped == by_input
    assert not stats.skipped and not stats.dead_letters and not stats.moved


def test_skips_are_counted_and_bad_records_become_dead_letters() -> None:
    stats = IngestStats()
    payment = {"id": "e1", "orderNo": "ORD-1", "state": "PENDING", "ts": 1,
               "payment": {"no": "P", "amount": 1, "currency": "CNY", "channel": ""}}
    home = partition_for("ORD-1", 4)
    records = [
        RawRecord("shop.payments", home, 0, b"ORD-1", json.dumps(payment).encode()),
        RawRecord("shop.payments", home, 1, b"ORD-1", None),
        RawRecord("shop.payments", home, 2, b"ORD-1",
                  json.dumps({**payment, "state": "LOST"}).encode()),
        RawRecord("shop.payments", 3, 3, None, b"not json"),
    ]
    outs = translator(stats).translate(records)
    assert stats.skipped == {("payments", "status PENDING is skipped"): 1,
                             ("payments", "tombstone"): 1}
    assert stats.dead_letters == {"payments": 2} and not stats.mapped
    codec = Codec()
    letters = [codec.decode_as("DeadLetter", out.value) for out in outs]
    assert [out.topic for out in outs] == ["t.crosscheck.dlq"] * 2
    assert [out.partition for out in outs] == [partition_for(b"ORD-1", 2), 3 % 2]
    assert letters[0] == {
        "source_topic": "shop.payments", "partition": home, "offset": 2, "key": b"ORD-1",
        "value": records[2].value, "failed_at": 123,
        "reason": "payments (json shop.payments): type = \"state\": 'LOST' is not in "
                  "[inputs.payments.types]"}
    assert letters[1]["reason"].startswith("payments (json shop.payments): format = \"json\": "
                                           "not JSON")
    summary = stats.summary()
    assert summary.startswith("read 4, mapped 0, skipped 2 (status PENDING is skipped 1, "
                              "tombstone 1), dead-lettered 2")


def test_a_record_off_its_orders_partition_is_moved_counted_and_said_once() -> None:
    stats = IngestStats()
    warnings: list[str] = []
    event = {"messageId": "m", "bizOrderId": "ORD-1", "reservation": "R", "sku": "S",
             "count": 1, "action": "TRY", "time": "2026-11-21T10:00:00Z"}
    away = (partition_for("ORD-1", 4) + 1) % 4
    records = [RawRecord("shop.stock", away, n, b"R", json.dumps({**event, "messageId": n})
                         .encode()) for n in range(3)]
    outs = translator(stats, warnings).translate(records)
    assert {out.partition for out in outs} == {partition_for("ORD-1", 4)}
    assert stats.moved == {"inventory": 3}
    assert len(warnings) == 1 and "not on the partition of their order id" in warnings[0]
    assert "moved to their order's partition 3" in stats.summary()


def test_counters_are_prometheus_counters_and_a_snapshot_takes_a_batch_back() -> None:
    stats = IngestStats()
    saved = stats.snapshot()
    stats.read["payments"] += 5
    stats.skipped[("payments", "status unchanged")] += 2
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in StatsCollector(stats).collect() for s in family.samples}
    assert samples[("crosscheck_ingest_read_total", (("input", "payments"),))] == 5
    assert samples[("crosscheck_ingest_skipped_total",
                    (("input", "payments"), ("reason", "status unchanged")))] == 2
    stats.restore(saved)
    assert not stats.read and not stats.skipped


def test_the_partitioning_advice_names_what_to_change() -> None:
    sources = parse_sources("""\
[inputs.payments]
topic = "shop.public.payments"
format = "debezium"
order_id = "order_ref"
payment_id = "id"
amount = "amount"
currency = "currency"
event_time = "updated_at"
type = "status"
""")
    spec = sources.inputs[TopicId.PAYMENTS]
    text = not_copartitioned(spec, 1, 4)
    assert "has 1 partition(s), the inputs have 4" in text
    assert "topic.creation.default.partitions=4" in text
    assert "message.key.columns=public.payments:order_ref" in text
    assert "key.converter=org.apache.kafka.connect.storage.StringConverter" in text
    assert "--repartition" in text
    assert "message.key.columns=public.payments:order_ref" in moved_advice(spec, 4)
    json_spec = load_sources(SOURCES_JSON).inputs[TopicId.ORDERS]
    assert "partitioner=murmur2_random" in not_copartitioned(json_spec, 8, 4)
