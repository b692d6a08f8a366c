"""The murmur2 partitioner matches Kafka's Java client (Utils.murmur2, DefaultPartitioner)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology.partitioner import KeyPartitions, murmur2, partition_for

#: org.apache.kafka.common.utils.UtilsTest#testMurmur2
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

#: key -> partition for 1, 3, 4 and 12 partitions: toPositive(murmur2(key)) % n
PARTITIONS = [
    (b"21", [0, 0, 0, 0]),
    (b"foobar", [0, 0, 2, 6]),
    (b"a-little-bit-long-string", [0, 2, 0, 8]),
    (b"a-little-bit-longer-string", [0, 2, 3, 11]),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", [0, 2, 1, 5]),
    (b"abc", [0, 0, 3, 3]),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS)
def test_kafka_murmur2_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), PARTITIONS)
def test_partition_vectors(key: bytes, expected: list[int]) -> None:
    assert [partition_for(key, n) for n in (1, 3, 4, 12)] == expected
    assert [partition_for(key.decode(), n) for n in (1, 3, 4, 12)] == expected


def test_partition_is_to_positive_of_the_hash() -> None:
    # Java: Utils.toPositive(h) == h & 0x7fffffff, not Math.abs(h)
    for key, h in KAFKA_VECTORS:
        assert partition_for(key, 7) == (h & 0x7FFFFFFF) % 7
        assert h < 0 or partition_for(key, 7) == h % 7


def test_str_keys_are_utf8() -> None:
    key = "\u8ba2\u5355-1"
    assert partition_for(key, 4) == partition_for(key.encode("utf-8"), 4)
    assert murmur2(key.encode("utf-8")) == 667668799


def _java_murmur2(data: bytes) -> int:
    """A line-by-line port of the Java code with explicit int32 overflow, as a reference."""

    def i32(x: int) -> int:
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x & 0x80000000 else x

    def ushr(x: int, n: int) -> int:  # Java >>>
        return (x & 0xFFFFFFFF) >> n

    length = len(data)
    seed, m, r = i32(0x9747B28C), 0x5BD1E995, 24
    h = i32(seed ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = i32((data[i4] & 0xFF) + ((data[i4 + 1] & 0xFF) << 8)
                + ((data[i4 + 2] & 0xFF) << 16) + ((data[i4 + 3] & 0xFF) << 24))
        k = i32(k * m)
        k = i32(k ^ ushr(k, r))
        k = i32(k * m)
        h = i32(h * m)
        h = i32(h ^ k)
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h = i32(h ^ ((data[base + 2] & 0xFF) << 16))
    if rest >= 2:
        h = i32(h ^ ((data[base + 1] & 0xFF) << 8))
    if rest >= 1:
        h = i32(h ^ (data[base] & 0xFF))
        h = i32(h * m)
    h = i32(h ^ ushr(h, 13))
    h = i32(h * m)
    h = i32(h ^ ushr(h, 15))
    return h


def test_reference_port_agrees_with_the_vectors() -> None:
    for key, expected in KAFKA_VECTORS:
        assert _java_murmur2(key) == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_murmur2_matches_the_java_algorithm_for_any_bytes(data: bytes) -> None:
    assert murmur2(data) == _java_murmur2(data)
    assert -(2**31) <= murmur2(data) < 2**31


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.integers(1, 512))
def test_partition_is_in_range(key: str, partitions: int) -> None:
    assert 0 <= partition_for(key, partitions) < partitions


def test_key_partitions_remembers_partition_for_and_stays_bounded() -> None:
    homes = KeyPartitions(7, size=3)
    keys = [f"ORD-{i}" for i in range(10)] * 2
    assert [homes.of(k) for k in keys] == [partition_for(k, 7) for k in keys]
    assert len(homes._known) <= 3


def test_key_partitions_computes_unseen_keys_with_the_function_it_is_given() -> None:
    seen: list[tuple[str, int]] = []

    def partition_of(key: str, partitions: int) -> int:
        seen.append((key, partitions))
        return 5

    homes = KeyPartitions(7, partition_of=partition_of)
    assert [homes.of("ORD-1"), homes.of("ORD-1"), homes.of("ORD-2")] == [5, 5, 5]
    assert seen == [("ORD-1", 7), ("ORD-2", 7)]
