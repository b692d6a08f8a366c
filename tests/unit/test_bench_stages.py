"""The per-stage breakdown: what the runtime counts, /metrics carries and bench prints."""

from __future__ import annotations

from builders import BlobStore
from test_web_metrics import NOW, FakeSource

from schemas.codec import Codec
from streams.bench.data import generate
from streams.bench.stages import breakdown, parse_stages
from streams.config import RuleConfig, load_settings
from streams.web.prometheus import WorkerMetrics
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import STAGES, Counters, Record
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId, Topology


def test_stage_seconds_go_through_the_exposition_and_back() -> None:
    source = FakeSource(counters=Counters())
    source.counters.stage_seconds.update(decode=1.5, engine=2.25, state_write=0.5,
                                         produce=0.75, batch=5.5, commit=0.25)
    found = parse_stages(WorkerMetrics(source, lambda: NOW).render()[0].decode())
    assert found == {"decode": 1.5, "engine": 2.25, "state_write": 0.5, "produce": 0.75,
                     "batch": 5.5, "commit": 0.25}
    assert set(found) == set(STAGES)
    assert parse_stages("crosscheck_records_total 3.0\n") == {}


def test_breakdown_gives_microseconds_per_record_and_shares_of_the_wall_time() -> None:
    stages = {"decode": 1.0, "engine": 3.0, "state_write": 0.5, "produce": 1.5, "batch": 7.0,
              "commit": 0.5}
    line = breakdown(stages, 100_000, 10.0)
    assert "decode 10.0 µs (10%)" in line and "engine 30.0 µs (30%)" in line
    assert "state write 5.0 µs (5%)" in line and "produce 15.0 µs (15%)" in line
    assert "rest of the batch 10.0 µs (10%)" in line  # 7.0 - 6.0 s
    assert "commits 5.0 µs (5%)" in line
    assert "outside the batch (Faust consume path, waiting) 25.0 µs (25%)" in line
    assert "not available" in breakdown({}, 100, 1.0)


def test_the_runtime_counts_decode_time_for_every_record_and_engine_time_for_good_ones(
        ) -> None:
    topology, codec, store = Topology(2, "", {}), Codec(), BlobStore()
    rt = Runtime(RuleConfig(), topology, codec, lambda p: store, dict.fromkeys(TopicId, 2), 2,
                 "w1", clock=lambda: 1000)
    assert rt.counters.stage_seconds == dict.fromkeys(STAGES, 0.0)
    rt.handle(Record(topology.name(TopicId.PAYMENTS), 0, 0, b"k", b"not avro"))
    assert rt.counters.stage_seconds["decode"] > 0 and rt.counters.stage_seconds["engine"] == 0
    for offset, (topic, record) in enumerate(generate(50, 3, load_settings({}))):
        value = codec.encode(BY_ID[topic].value_schema, record)
        rt.handle(Record(topology.name(topic), partition_for(record["order_id"], 2), offset,
                         record["order_id"].encode(), value))
    assert sum(rt.counters.events.values()) == 50
    assert rt.counters.stage_seconds["engine"] > 0
