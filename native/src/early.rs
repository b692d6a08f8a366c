//! Early decisions (`streams/engine/early.py`): each rule decides at its own watermark,
//! before the partition's. A decision that would fire is kept by rule (`keep`); after every
//! engine call each rule's watermark is computed from a snapshot of the partition's meta,
//! and the kept decisions it passes are handed back to be made (`take_ready`). The keeping
//! is not part of the state: after a restart, the partition's watermark makes them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use pyo3::prelude::*;

use crate::model::Source;
use crate::triggers::Plan;
use crate::watermark::Snapshot;

/// The digest an early decision is kept under (once).
fn digest(rule: i64, due: i64, order_id: &str, key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (rule, due, order_id, key).hash(&mut h);
    h.finish()
}

/// The decisions kept for their rules' watermarks, and those watermarks.
#[derive(Default)]
pub struct Early {
    /// rule -> the decisions that would fire, by (due, order_id, key)
    heaps: HashMap<i64, BinaryHeap<Reverse<(i64, String, String)>>>,
    /// the digests of the kept decisions, to keep each once
    kept: HashSet<u64>,
    /// the meta the watermarks are computed from, kept up to date (`see`)
    snapshot: Option<Snapshot>,
    /// rule -> its watermark (never backwards)
    marks: HashMap<i64, i64>,
}

impl Early {
    pub fn new() -> Self {
        Early::default()
    }

    /// Keep a decision that would fire (once: by a 64-bit digest, so a collision only
    /// leaves a decision to the partition's watermark).
    pub fn keep(&mut self, rule: i64, due: i64, order_id: &str, key: String) {
        if self.kept.insert(digest(rule, due, order_id, &key)) {
            self.heaps.entry(rule).or_default().push(Reverse((due, order_id.to_string(), key)));
        }
    }

    /// Bring the snapshot of the partition's meta up to date: after an event read on
    /// `source` at `time` (then the partition's watermark), from the event alone; after
    /// any other change of the meta, read again. None when nothing was ever kept (nothing
    /// to compute); else the partition's watermark.
    pub fn see(&mut self, meta: &Bound<'_, PyAny>, event: Option<(Source, i64, Option<i64>)>)
        -> PyResult<Option<Option<i64>>> {
        if self.heaps.is_empty() {
            self.snapshot = None;
            return Ok(None);
        }
        match (self.snapshot.as_mut(), event) {
            (Some(snap), Some((source, time, after))) => snap.observe(source, time, after),
            _ => self.snapshot = Some(Snapshot::read(meta)?),
        }
        Ok(self.snapshot.as_ref().map(|s| s.watermark))
    }

    /// The kept decisions their rules' watermarks now pass and the partition's has not, as
    /// (due, rule, order_id, key), sorted; they are no longer kept.
    pub fn take_ready(&mut self, plan: &Plan, lateness: i64) -> Vec<(i64, i64, String, String)> {
        let Some(snap) = self.snapshot.as_ref() else { return Vec::new() };
        let wm = snap.watermark;
        let mut ready = Vec::new();
        for (&rule, heap) in self.heaps.iter_mut() {
            if heap.is_empty() {
                continue;
            }
            let mut mark = self.marks.get(&rule).copied();
            if let Some(new) = snap.rule_candidate(plan.decided_on(rule), lateness) {
                if mark.is_none_or(|m| new > m) {
                    self.marks.insert(rule, new);
                    mark = Some(new);
                }
            }
            let Some(mark) = mark else { continue };
            while heap.peek().is_some_and(|Reverse((due, _, _))| *due <= mark) {
                let Reverse((due, order_id, key)) = heap.pop().expect("peeked");
                self.kept.remove(&digest(rule, due, &order_id, &key));
                if wm.is_none_or(|w| due > w) {
                    ready.push((due, rule, order_id, key));
                }
            }
        }
        ready.sort();
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rules;

    fn plan() -> Plan {
        let settings = vec![("payment_timeout", 40), ("reservation_timeout", 20),
                            ("shipment_timeout", 60), ("payment_grace", 10),
                            ("release_timeout", 30), ("tcc_grace", 5),
                            ("callback_timeout", 50)];
        Plan::new(Rules { allowed_lateness: 10, state_retention: 0, settings, own: Vec::new() }, None).unwrap()
    }

    #[test]
    fn a_rule_decides_when_the_inputs_it_reads_pass() {
        let plan = plan();
        let mut early = Early::new();
        // DUPLICATE_PAYMENT: orders, payments, inventory (the refunds' inputs)
        early.keep(5, 100, "o2", "p2".into());
        early.keep(5, 100, "o2", "p2".into()); // kept once
        early.keep(5, 100, "o1", "p1".into());
        early.keep(4, 100, "o3", "s1".into()); // SHIPPED_WITHOUT_PAYMENT: and shipping
        early.keep(9, 500, "o4", "r1".into()); // TCC_EMPTY_ROLLBACK: inventory
        // shipping silent: no partition watermark; orders, payments and inventory at 120
        early.snapshot = Some(Snapshot::of([Some(120), Some(120), Some(120), None], [false; 4],
                                           None));
        assert_eq!(early.take_ready(&plan, 10), vec![(100, 5, "o1".to_string(), "p1".to_string()),
                                                     (100, 5, "o2".to_string(), "p2".to_string())]);
        assert_eq!(early.take_ready(&plan, 10), vec![], "made once");
        // shipping speaks; the partition's watermark has passed 100 (it made rule 4 itself)
        early.snapshot.as_mut().unwrap().observe(Source::Shipping, 200, Some(105));
        assert_eq!(early.take_ready(&plan, 10), vec![]);
        early.keep(5, 100, "o2", "p2".into()); // kept again, after being made: not again
        assert_eq!(early.take_ready(&plan, 10), vec![]);
        early.snapshot.as_mut().unwrap().observe(Source::Inventory, 600, Some(105));
        assert_eq!(early.take_ready(&plan, 10), vec![(500, 9, "o4".to_string(), "r1".to_string())]);
        assert_eq!(early.marks.get(&9), Some(&590));
    }
}
