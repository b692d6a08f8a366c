//! The per-partition watermark over a Python `PartitionMeta` (`streams/engine/watermark.py`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::intern;

use crate::model::Source;

const MAX_TIME: &str = "max_time";
const IDLE: &str = "idle";
const RELEASED: &str = "released";
const WATERMARK: &str = "watermark";
/// The fields of `streams.engine.state.PartitionMeta` read and written here, by name.
pub const META_FIELDS: [&str; 4] = [MAX_TIME, IDLE, RELEASED, WATERMARK];

fn parts<'py>(meta: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let py = meta.py();
    let max_time = meta.getattr(intern!(py, MAX_TIME))?.cast_into::<PyDict>()?;
    let idle = meta.getattr(intern!(py, IDLE))?.cast_into::<PyList>()?;
    Ok((max_time, idle))
}

/// The source's name as an interned Python string (no new string per lookup).
fn key<'py>(py: Python<'py>, source: Source) -> &'py Bound<'py, pyo3::types::PyString> {
    match source {
        Source::Orders => intern!(py, "orders"),
        Source::Payments => intern!(py, "payments"),
        Source::Inventory => intern!(py, "inventory"),
        Source::Shipping => intern!(py, "shipping"),
    }
}

fn is_idle(idle: &Bound<'_, PyList>, name: &str) -> PyResult<bool> {
    for n in idle.iter() {
        if n.extract::<&str>()? == name {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The watermark the sources currently allow (ignoring the never-backwards rule): the
/// lowest progress of the sources not released (a quiet one still holds), or, when every
/// source is quiet, the highest progress; minus the lateness (`streams/engine/watermark.py`).
fn candidate(meta: &Bound<'_, PyAny>, lateness: i64) -> PyResult<Option<i64>> {
    Ok(Snapshot::read(meta)?.candidate(lateness))
}

fn released_of<'py>(meta: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    Ok(meta.getattr(intern!(meta.py(), RELEASED))?.cast_into::<PyList>()?)
}

/// `names` with `name` put in (`on`) or taken out, sorted and without repeats.
fn with_name<'py>(names: &Bound<'py, PyList>, name: &str, on: bool) -> PyResult<Bound<'py, PyList>> {
    let mut all: Vec<String> = names.iter().map(|n| n.extract()).collect::<PyResult<_>>()?;
    all.retain(|n| n != name);
    if on {
        all.push(name.to_string());
    }
    all.sort();
    all.dedup();
    PyList::new(names.py(), all)
}

/// What the watermarks are computed from, read once from a `PartitionMeta`: each source's
/// progress, quiet and released flags, and the partition's watermark.
pub struct Snapshot {
    progress: [Option<i64>; 4],
    quiet: [bool; 4],
    released: [bool; 4],
    pub watermark: Option<i64>,
}

fn slot(source: Source) -> usize {
    match source {
        Source::Orders => 0,
        Source::Payments => 1,
        Source::Inventory => 2,
        Source::Shipping => 3,
    }
}

impl Snapshot {
    /// A snapshot of each source's progress and quiet flag (orders, payments, inventory,
    /// shipping), none released.
    #[cfg(test)]
    pub fn of(progress: [Option<i64>; 4], quiet: [bool; 4], watermark: Option<i64>) -> Snapshot {
        Snapshot { progress, quiet, released: [false; 4], watermark }
    }

    pub fn read(meta: &Bound<'_, PyAny>) -> PyResult<Snapshot> {
        let (max_time, idle) = parts(meta)?;
        let released = released_of(meta)?;
        let mut snap = Snapshot { progress: [None; 4], quiet: [false; 4], released: [false; 4],
                                  watermark: watermark(meta)? };
        for source in Source::ALL {
            let i = slot(source);
            snap.progress[i] = match max_time.get_item(key(meta.py(), source))? {
                Some(t) => Some(t.extract()?),
                None => None,
            };
            snap.quiet[i] = is_idle(&idle, source.name())?;
            snap.released[i] = is_idle(&released, source.name())?;
        }
        Ok(snap)
    }

    /// An event read on `source` at `time` (what `observe` does to the meta), and the
    /// partition's watermark after it.
    pub fn observe(&mut self, source: Source, time: i64, watermark: Option<i64>) {
        let i = slot(source);
        if self.progress[i].map_or(true, |p| time > p) {
            self.progress[i] = Some(time);
        }
        self.quiet[i] = false;
        self.released[i] = false;
        self.watermark = watermark;
    }

    /// `candidate`, over the snapshot.
    fn candidate(&self, lateness: i64) -> Option<i64> {
        if !self.quiet.iter().all(|q| *q) {
            let mut lowest: Option<i64> = None;
            for i in 0..4 {
                if self.released[i] {
                    continue;
                }
                let t = self.progress[i]?;
                if lowest.map_or(true, |l| t < l) {
                    lowest = Some(t);
                }
            }
            if let Some(l) = lowest {
                return Some(l - lateness);
            }
        }
        self.progress.iter().flatten().max().map(|b| b - lateness)
    }

    /// The watermark of a rule over only the inputs `reads` (`watermark.rule_candidate`):
    /// the lowest progress of those not released, the end of the traffic when every input
    /// is quiet, and at least the partition's own watermark.
    pub fn rule_candidate(&self, reads: &[Source], lateness: i64) -> Option<i64> {
        let own = self.watermark;
        if self.quiet.iter().all(|q| *q) {
            return self.candidate(lateness);
        }
        let mut lowest: Option<i64> = None;
        for &source in reads {
            let i = slot(source);
            if self.released[i] {
                continue;
            }
            match self.progress[i] {
                None => return own,
                Some(t) => {
                    if lowest.map_or(true, |l| t < l) {
                        lowest = Some(t);
                    }
                }
            }
        }
        let Some(lowest) = lowest else { return self.candidate(lateness) };
        let mark = lowest - lateness;
        Some(match own {
            Some(w) if w >= mark => w,
            _ => mark,
        })
    }
}

pub fn watermark(meta: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    meta.getattr(intern!(meta.py(), WATERMARK))?.extract()
}

fn set_watermark(meta: &Bound<'_, PyAny>, value: i64) -> PyResult<()> {
    meta.setattr(intern!(meta.py(), WATERMARK), value)
}

fn settle(meta: &Bound<'_, PyAny>, lateness: i64) -> PyResult<()> {
    if let Some(new) = candidate(meta, lateness)? {
        if watermark(meta)?.map_or(true, |wm| new > wm) {
            set_watermark(meta, new)?;
        }
    }
    Ok(())
}

/// An event read on `source`: raise its max time, clear its idle flag.
pub fn observe(meta: &Bound<'_, PyAny>, source: Source, event_time: i64, lateness: i64)
    -> PyResult<()> {
    let (max_time, idle) = parts(meta)?;
    let name = source.name();
    let name_key = key(meta.py(), source);
    let current: Option<i64> = match max_time.get_item(name_key)? {
        Some(t) => Some(t.extract()?),
        None => None,
    };
    if current.map_or(true, |c| event_time > c) {
        max_time.set_item(name_key, event_time)?;
    }
    if is_idle(&idle, name)? {
        idle.call_method1(intern!(meta.py(), "remove"), (name,))?;
        let released = released_of(meta)?;
        if is_idle(&released, name)? {
            released.call_method1(intern!(meta.py(), "remove"), (name,))?;
        }
    }
    settle(meta, lateness)
}

/// Mark `source` quiet, or active again (which also ends its release).
pub fn set_idle(meta: &Bound<'_, PyAny>, source: Source, idle_now: bool, lateness: i64)
    -> PyResult<()> {
    let (_, idle) = parts(meta)?;
    let py = meta.py();
    meta.setattr(intern!(py, IDLE), with_name(&idle, source.name(), idle_now)?)?;
    if !idle_now {
        let released = released_of(meta)?;
        meta.setattr(intern!(py, RELEASED), with_name(&released, source.name(), false)?)?;
    }
    settle(meta, lateness)
}

/// Release `source` (stalled past source_hold: it stops holding the watermark; it is quiet
/// too), or hold it again.
pub fn set_released(meta: &Bound<'_, PyAny>, source: Source, on: bool, lateness: i64)
    -> PyResult<()> {
    let py = meta.py();
    let released = released_of(meta)?;
    meta.setattr(intern!(py, RELEASED), with_name(&released, source.name(), on)?)?;
    if on {
        let (_, idle) = parts(meta)?;
        meta.setattr(intern!(py, IDLE), with_name(&idle, source.name(), true)?)?;
    }
    settle(meta, lateness)
}

/// Move the watermark to `value` unless that would move it backwards.
pub fn force(meta: &Bound<'_, PyAny>, value: i64) -> PyResult<()> {
    if watermark(meta)?.map_or(true, |wm| value > wm) {
        set_watermark(meta, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Source::{Inventory as I, Orders as O, Payments as P, Shipping as S};

    /// A snapshot of progress per source (orders, payments, inventory, shipping).
    fn snap(progress: [Option<i64>; 4], watermark: Option<i64>) -> Snapshot {
        Snapshot { progress, quiet: [false; 4], released: [false; 4], watermark }
    }

    #[test]
    fn the_slowest_input_holds_the_watermark() {
        let s = snap([Some(500), Some(900), Some(700), Some(800)], None);
        assert_eq!(s.candidate(60), Some(440));
        let silent = snap([None, Some(900), Some(700), Some(800)], None);
        assert_eq!(silent.candidate(60), None, "an input never heard of holds it");
        let mut released = silent;
        released.released[slot(O)] = true;
        assert_eq!(released.candidate(60), Some(640), "unless it is released");
        let mut ended = snap([None, Some(900), Some(700), Some(800)], None);
        ended.quiet = [true; 4];
        assert_eq!(ended.candidate(60), Some(840), "every input quiet: the end of the traffic");
    }

    #[test]
    fn a_rule_waits_only_for_what_it_reads() {
        let s = snap([None, Some(900), Some(700), Some(300)], Some(200));
        assert_eq!(s.candidate(60), None);
        assert_eq!(s.rule_candidate(&[P, I], 60), Some(640));
        assert_eq!(s.rule_candidate(&[P, I, S], 60), Some(240));
        assert_eq!(s.rule_candidate(&[P, O], 60), Some(200), "orders silent: the partition's");
        let mut behind = snap([Some(100), Some(900), Some(700), Some(800)], Some(500));
        assert_eq!(behind.rule_candidate(&[I], 60), Some(640));
        behind.progress[slot(I)] = Some(400);
        assert_eq!(behind.rule_candidate(&[I], 60), Some(500), "never below the partition's");
        let mut gone = snap([Some(100), Some(900), Some(700), Some(800)], None);
        gone.released[slot(I)] = true;
        assert_eq!(gone.rule_candidate(&[I], 60), Some(40), "nothing left: the partition's candidate");
    }

    #[test]
    fn an_event_moves_its_input_on_and_wakes_it() {
        let mut s = snap([Some(100), Some(900), Some(700), Some(800)], Some(40));
        s.quiet[slot(O)] = true;
        s.released[slot(O)] = true;
        s.observe(O, 50, Some(40));
        assert_eq!(s.progress[slot(O)], Some(100), "progress never goes back");
        assert!(!s.quiet[slot(O)] && !s.released[slot(O)]);
        s.observe(O, 1000, Some(640));
        assert_eq!((s.progress[slot(O)], s.watermark), (Some(1000), Some(640)));
    }
}
