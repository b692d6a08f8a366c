//! Kafka's murmur2 partitioner (`topology/partitioner.py`'s `partition_for`), for the worker's
//! check that a record sits on its order's partition: one call per order seen, not ~8 µs of
//! Python arithmetic.

use pyo3::prelude::*;

/// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed int32.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5BD1_E995;
    let length = data.len();
    let mut h: u32 = 0x9747_B28C ^ (length as u32);
    let tail = length & !3;
    for chunk in data[..tail].chunks_exact(4) {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = length & 3;
    if rest == 3 {
        h ^= u32::from(data[tail + 2]) << 16;
    }
    if rest >= 2 {
        h ^= u32::from(data[tail + 1]) << 8;
    }
    if rest >= 1 {
        h ^= u32::from(data[tail]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's DefaultPartitioner gives the UTF-8 bytes of `key`.
#[pyfunction]
pub fn partition_for(key: &str, partitions: u32) -> PyResult<u32> {
    if partitions == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err("partitions must be positive"));
    }
    Ok(((murmur2(key.as_bytes()) as u32) & 0x7FFF_FFFF) % partitions)
}

#[cfg(test)]
mod tests {
    use super::murmur2;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's UtilsTest.testMurmur2 vectors
        for (key, hash) in [("21", -973_932_308), ("foobar", -790_332_482),
                            ("a-little-bit-long-string", -985_981_536),
                            ("a-little-bit-longer-string", -1_486_304_829),
                            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
                            ("", 275_646_681)] {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
        }
        // the partition of a key, as the Java producer's
        assert_eq!(((murmur2(b"o1") as u32) & 0x7FFF_FFFF) % 12, 7);
    }
}
