//! `DueBuffer` of `streams/worker/due_index.py` in Rust: the worker's due-index entries added
//! or popped since the last flush, over the RocksDB index read through a Python `scan`. The
//! native engine reaches it without a Python call (`host.rs`): adding an entry, and popping
//! while the watermark is below the next due time (after most events), cost none. Made
//! with no `scan`, it is an index held in memory alone (the replay's).

use std::collections::{BTreeSet, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Above every index key (they start with hex digits).
const NO_KEY: &[u8] = b"\xff";
/// Later than any due time.
const FOREVER: i64 = 1 << 62;

/// Index key: fixed-width hex of the due time, so byte order is time order.
pub fn due_key(due: i64, order_id: &str) -> Vec<u8> {
    let mut key = format!("{:016x}", due.wrapping_add(1 << 62) as u64).into_bytes();
    key.extend_from_slice(order_id.as_bytes());
    key
}

/// Inverse of `due_key` (None: not an index key).
pub fn parse_due_key(key: &[u8]) -> Option<(i64, String)> {
    let hex = std::str::from_utf8(key.get(..16)?).ok()?;
    let due = (i128::from(u64::from_str_radix(hex, 16).ok()?) - (1 << 62)) as i64;
    let order_id = String::from_utf8(key[16..].to_vec()).ok()?;
    Some((due, order_id))
}

fn parse(key: &[u8]) -> PyResult<(i64, String)> {
    parse_due_key(key).ok_or_else(|| pyo3::exceptions::PyValueError::new_err("not a due-index key"))
}

/// The keys a scan of the index found from a start key up to a limit, and the first key
/// above the limit (None: there is none).
pub type Scanned = (Vec<Vec<u8>>, Option<Vec<u8>>);

#[pyclass(module = "streams._native")]
pub struct DueBuffer {
    /// None: an in-memory index (the replay's): nothing below, popped entries forgotten
    scan: Option<Py<PyAny>>,
    /// entries added and not popped since the last flush, in key order
    added: BTreeSet<Vec<u8>>,
    /// entries popped since the last flush (deleted from RocksDB at flush)
    removed: HashSet<Vec<u8>>,
    /// no key of the RocksDB index below this one is live (None: not known)
    db_floor: Option<Vec<u8>>,
    /// every index entry below this key has been popped
    scan_from: Vec<u8>,
    /// no live index entry is due before this (None: not known)
    next_due: Option<i64>,
}

impl DueBuffer {
    pub fn add_entry(&mut self, due: i64, order_id: &str) {
        let key = due_key(due, order_id);
        self.removed.remove(&key);
        if key < self.scan_from {
            self.scan_from = key.clone();
        }
        self.added.insert(key);
        if self.next_due.is_some_and(|n| due < n) {
            self.next_due = Some(due);
        }
    }

    pub fn pop_entries(&mut self, py: Python<'_>, up_to: i64) -> PyResult<Vec<(i64, String)>> {
        let scan = self.scan.take();
        let popped = self.pop_with(up_to, scan.is_some(), |start, limit| {
            let scan = scan.as_ref().expect("a scan");
            let result = scan.bind(py).call1((PyBytes::new(py, start), PyBytes::new(py, limit)))?;
            let (keys, above): (Bound<'_, PyList>, Option<Vec<u8>>) = result.extract()?;
            let mut found = Vec::with_capacity(keys.len());
            for key in keys.iter() {
                found.push(key.cast::<PyBytes>()?.as_bytes().to_vec());
            }
            Ok((found, above))
        });
        self.scan = scan;
        popped
    }

    /// Remove and return the entries with due <= up_to, by (due, order_id): those added
    /// here, and (`db`) the live ones of the index below, read through `scan`.
    pub fn pop_with<F>(&mut self, up_to: i64, db: bool, mut scan: F) -> PyResult<Vec<(i64, String)>>
    where F: FnMut(&[u8], &[u8]) -> PyResult<Scanned> {
        if self.next_due.is_some_and(|n| up_to < n) {
            return Ok(Vec::new());
        }
        let limit = due_key(up_to, "\u{10ffff}");
        let mut found: BTreeSet<Vec<u8>> = BTreeSet::new();
        let keep = self.added.split_off(&limit);
        found.append(&mut self.added); // the added keys < limit
        self.added = keep;
        if self.added.first().is_some_and(|k| *k == limit) {
            let k = self.added.pop_first().expect("first");
            found.insert(k);
        }
        let below = self.db_floor.as_ref().is_none_or(|f| *f <= limit);
        if db && below {
            let (keys, above) = scan(&self.scan_from, &limit)?;
            for key in keys {
                if !self.removed.contains(&key) {
                    found.insert(key);
                }
            }
            self.db_floor = Some(above.unwrap_or_else(|| NO_KEY.to_vec()));
        }
        if db {
            for key in &found {
                self.removed.insert(key.clone());
            }
        }
        if limit > self.scan_from {
            self.scan_from = limit;
        }
        let mut floor: Option<&Vec<u8>> = self.db_floor.as_ref().filter(|f| f.as_slice() != NO_KEY);
        if let Some(first) = self.added.first() {
            if floor.is_none_or(|f| first < f) {
                floor = Some(first);
            }
        }
        self.next_due = Some(match floor {
            None => FOREVER,
            Some(key) => parse(key)?.0,
        });
        let mut entries = found.iter().map(|k| parse(k)).collect::<PyResult<Vec<_>>>()?;
        entries.sort();
        Ok(entries)
    }
}

#[pymethods]
impl DueBuffer {
    /// Over the index read through `scan`; or, with None, an index held in memory alone.
    #[new]
    #[pyo3(signature = (scan))]
    fn new(scan: Option<Py<PyAny>>) -> Self {
        let db_floor = if scan.is_none() { Some(NO_KEY.to_vec()) } else { None };
        DueBuffer { scan, added: BTreeSet::new(), removed: HashSet::new(), db_floor,
                    scan_from: Vec::new(), next_due: None }
    }

    /// Add the entry (a repeated entry is kept once).
    fn add(&mut self, due: i64, order_id: &str) {
        self.add_entry(due, order_id);
    }

    /// Remove and return the entries with due <= up_to, by (due, order_id).
    fn pop(&mut self, py: Python<'_>, up_to: i64) -> PyResult<Vec<(i64, String)>> {
        self.pop_entries(py, up_to)
    }

    /// Whether `flush` has anything to write.
    #[getter]
    fn dirty(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }

    /// The keys to put into RocksDB and the keys to delete from it; then nothing is pending.
    fn flush<'py>(&mut self, py: Python<'py>) -> (Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>) {
        if let (Some(first), Some(floor)) = (self.added.first(), self.db_floor.as_ref()) {
            if first < floor {
                self.db_floor = Some(first.clone());
            }
        }
        let puts = std::mem::take(&mut self.added).iter().map(|k| PyBytes::new(py, k)).collect();
        let deletes = std::mem::take(&mut self.removed).iter().map(|k| PyBytes::new(py, k)).collect();
        (puts, deletes)
    }

    /// Forget what is known of RocksDB's keys (after the index was rebuilt).
    fn rescan(&mut self) {
        self.scan_from.clear();
        self.db_floor = None;
        self.next_due = None;
    }

    /// Drop every pending change (the partition was taken away).
    fn clear(&mut self) {
        self.added.clear();
        self.removed.clear();
    }
}

#[pyfunction]
#[pyo3(name = "due_key")]
pub fn py_due_key<'py>(py: Python<'py>, due: i64, order_id: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &due_key(due, order_id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn keys_sort_by_time_and_parse_back() {
        let times = [-(1 << 40), -1, 0, 1, 59_999, 1_795_219_200_000];
        let keys: Vec<Vec<u8>> = times.iter().map(|t| due_key(*t, "o1")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for t in times {
            assert_eq!(parse_due_key(&due_key(t, "order-7")), Some((t, "order-7".to_string())));
        }
        assert_eq!(&due_key(0, "o")[..], b"4000000000000000o");
        assert_eq!(parse_due_key(b"not hex at all!!o"), None);
        assert_eq!(parse_due_key(b"short"), None);
    }

    fn no_db(_: &[u8], _: &[u8]) -> PyResult<Scanned> {
        panic!("an in-memory index reads no database")
    }

    #[test]
    fn in_memory_pops_in_order_once() {
        let mut buffer = DueBuffer::new(None);
        for (due, order) in [(30, "b"), (10, "z"), (30, "a"), (20, "c"), (10, "z")] {
            buffer.add_entry(due, order);
        }
        assert_eq!(buffer.pop_with(5, false, no_db).unwrap(), vec![]);
        assert_eq!(buffer.pop_with(20, false, no_db).unwrap(),
                   vec![(10, "z".to_string()), (20, "c".to_string())]);
        assert_eq!(buffer.pop_with(20, false, no_db).unwrap(), vec![]);
        buffer.add_entry(15, "late");
        assert_eq!(buffer.pop_with(40, false, no_db).unwrap(),
                   vec![(15, "late".to_string()), (30, "a".to_string()), (30, "b".to_string())]);
        assert!(buffer.added.is_empty() && buffer.removed.is_empty());
    }

    /// A buffer over a database of `keys`, answering scans as RocksDB's iterator would.
    fn over(keys: &BTreeSet<Vec<u8>>) -> (DueBuffer, impl FnMut(&[u8], &[u8]) -> PyResult<Scanned> + '_) {
        let buffer = DueBuffer { scan: None, added: BTreeSet::new(), removed: HashSet::new(),
                                 db_floor: None, scan_from: Vec::new(), next_due: None };
        let scan = move |start: &[u8], limit: &[u8]| {
            let found: Vec<Vec<u8>> = keys.iter()
                .filter(|k| k.as_slice() >= start && k.as_slice() <= limit).cloned().collect();
            let above = keys.iter().find(|k| k.as_slice() > limit).cloned();
            Ok((found, above))
        };
        (buffer, scan)
    }

    #[test]
    fn pops_the_database_and_the_added_entries_together() {
        let db: BTreeSet<Vec<u8>> = [(10, "a"), (25, "b"), (40, "c")].iter()
            .map(|(d, o)| due_key(*d, o)).collect();
        let (mut buffer, mut scan) = over(&db);
        buffer.add_entry(20, "x");
        assert_eq!(buffer.pop_with(25, true, &mut scan).unwrap(),
                   vec![(10, "a".to_string()), (20, "x".to_string()), (25, "b".to_string())]);
        // the popped database keys are deleted at the flush, and not popped again
        assert_eq!(buffer.removed.len(), 3);
        assert_eq!(buffer.next_due, Some(40));
        assert_eq!(buffer.pop_with(39, true, |_: &[u8], _: &[u8]| -> PyResult<Scanned> {
            panic!("nothing is due before 40: no scan")
        }).unwrap(), vec![]);
        assert_eq!(buffer.pop_with(100, true, &mut scan).unwrap(), vec![(40, "c".to_string())]);
    }
}
