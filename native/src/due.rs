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

/// Inverse of `due_key`.
pub fn parse_due_key(key: &[u8]) -> PyResult<(i64, String)> {
    let bad = || pyo3::exceptions::PyValueError::new_err("not a due-index key");
    let hex = std::str::from_utf8(key.get(..16).ok_or_else(bad)?).map_err(|_| bad())?;
    let due = (i128::from(u64::from_str_radix(hex, 16).map_err(|_| bad())?) - (1 << 62)) as i64;
    let order_id = String::from_utf8(key[16..].to_vec()).map_err(|_| bad())?;
    Ok((due, order_id))
}

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
        if let Some(scan) = self.scan.as_ref().filter(|_| below) {
            let result = scan.bind(py).call1((
                PyBytes::new(py, &self.scan_from), PyBytes::new(py, &limit)))?;
            let (keys, above): (Bound<'_, PyList>, Option<Vec<u8>>) = result.extract()?;
            for key in keys.iter() {
                let key: Vec<u8> = key.cast::<PyBytes>()?.as_bytes().to_vec();
                if !self.removed.contains(&key) {
                    found.insert(key);
                }
            }
            self.db_floor = Some(above.unwrap_or_else(|| NO_KEY.to_vec()));
        }
        if self.scan.is_some() {
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
            Some(key) => parse_due_key(key)?.0,
        });
        let mut entries = found.iter().map(|k| parse_due_key(k)).collect::<PyResult<Vec<_>>>()?;
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
