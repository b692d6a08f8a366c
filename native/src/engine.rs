//! The streaming decision engine of one partition number (`streams/engine/partition.py`): the
//! same processing model, step for step, over orders held as `NativeOrder` objects.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};
use pyo3::exceptions::PyValueError;
use pyo3::IntoPyObjectExt;


use crate::catalog::{decide, fires, holds, Finding};
use crate::ids::mismatch_id;
use crate::table::{rule, RULES};
use crate::host::Host;
use crate::model::{Decision, Event, LedgerEntry, OrderState, Rules, Source, OPEN, RESOLVED};
use crate::partition::murmur2;
use crate::record;
use crate::state::{decode_order, encode_order};
use crate::triggers::{due_between, new_decisions, Plan};
use crate::view::{place, View};
use crate::watermark;

/// The digest an early decision is kept under (once).
fn early_digest(rule: i64, due: i64, order_id: &str, key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (rule, due, order_id, key).hash(&mut h);
    h.finish()
}

/// An order's state, as the stores hold it when the native engine runs.
#[pyclass(module = "streams._native")]
pub struct NativeOrder {
    pub state: OrderState,
}

#[pymethods]
impl NativeOrder {
    /// The state in format 2 (what `streams.engine.state.decode_order` reads).
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, &encode_order(&self.state))
    }

    #[getter]
    fn order_id(&self) -> &str {
        &self.state.order_id
    }

    /// The state as a Python `OrderState` (a copy: for documents and tests).
    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = py.import("streams.engine.state")?;
        state.getattr("decode_order")?.call1((self.encode(py),))
    }

    fn __repr__(&self) -> String {
        format!("NativeOrder({:?})", self.state.order_id)
    }
}

/// An input event read here (`read_record`): `on_event` applies it as the `Event` the
/// checked path gives for the same record (the replay orders them by `event_time`).
#[pyclass(module = "streams._native", frozen)]
pub struct NativeEvent {
    event: Event,
    order_id: String,
}

#[pymethods]
impl NativeEvent {
    #[getter]
    fn event_time(&self) -> i64 {
        self.event.step.event_time
    }

    #[getter]
    fn order_id(&self) -> &str {
        &self.order_id
    }
}

/// The event of an input record's value when it is framed with `schema_id`, certainly valid
/// (`record.rs`) and its order_id's murmur2 partition of `partitions` is `partition`.
fn read_home(source: Source, value: &[u8], schema_id: u32, partition: u32, partitions: u32)
    -> Option<(Event, String)> {
    let framed = value.len() >= 5 && value[0] == 0
        && u32::from_be_bytes([value[1], value[2], value[3], value[4]]) == schema_id;
    let (ev, order_id) = if framed { record::read_event(source, value, 5)? } else { return None };
    if partitions == 0
        || ((murmur2(order_id.as_bytes()) as u32) & 0x7FFF_FFFF) % partitions != partition {
        return None;
    }
    Some((ev, order_id))
}

/// `on_record`'s reading without the engine, for the replay, which orders events by time
/// before applying them: a `NativeEvent`, or None (the checked path decides). `source` is
/// the source's name (`streams.model.Source` value).
#[pyfunction]
pub fn read_record(source: &str, value: &[u8], schema_id: u32, partition: u32, partitions: u32)
    -> PyResult<Option<NativeEvent>> {
    let Some(source) = Source::ALL.iter().copied().find(|s| s.name() == source) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("not a source: {source:?}")));
    };
    Ok(read_home(source, value, schema_id, partition, partitions)
        .map(|(event, order_id)| NativeEvent { event, order_id }))
}

/// Format-2 bytes (or format 1, upgraded through the Python decoder) -> NativeOrder.
#[pyfunction]
pub fn decode(py: Python<'_>, data: &[u8]) -> PyResult<NativeOrder> {
    let first = data.first().copied().unwrap_or(0);
    let is_map = (0x80..=0x8f).contains(&first) || first == 0xde || first == 0xdf;
    let state = if is_map {
        let module = py.import("streams.engine.state")?;
        let upgraded = module.getattr("decode_order")?.call1((pyo3::types::PyBytes::new(py, data),))?;
        let v2: Vec<u8> = module.getattr("encode_order")?.call1((upgraded,))?.extract()?;
        decode_order(&v2)
    } else {
        decode_order(data)
    };
    state.map(|state| NativeOrder { state })
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("order state: {e}")))
}

/// NativeOrder -> format-2 bytes, byte for byte what msgspec writes for the same state.
#[pyfunction]
pub fn encode<'py>(py: Python<'py>, order: PyRef<'_, NativeOrder>) -> Bound<'py, pyo3::types::PyBytes> {
    order.encode(py)
}

/// The settings of a `RuleConfig` the engine reads: its own two, and those the rule table's
/// triggers name.
pub fn rule_settings() -> Vec<&'static str> {
    let mut names = vec!["allowed_lateness", "state_retention"];
    for name in RULES.iter().filter_map(|r| r.trigger.delay) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The settings of a `RuleConfig`, read by name.
fn rules_of(obj: &Bound<'_, PyAny>) -> PyResult<Rules> {
    let get = |name: &str| -> PyResult<i64> { obj.getattr(name)?.extract() };
    let mut settings: Vec<(&'static str, i64)> = Vec::new();
    for name in rule_settings() {
        settings.push((name, get(name)?));
    }
    Ok(Rules {
        allowed_lateness: get("allowed_lateness")?,
        state_retention: get("state_retention")?,
        settings,
    })
}

/// The OPEN, resolvable, not frozen mismatches, by (decided_at, rule, subject): their ids.
fn open_entries(state: &OrderState) -> Vec<String> {
    let mut entries: Vec<&LedgerEntry> = state.book.ledger.iter().map(|(_, e)| e)
        .filter(|e| e.status == OPEN && !e.frozen && rule(e.rule).is_some_and(|r| r.resolvable))
        .collect();
    entries.sort_by(|a, b| (a.decided_at, a.rule, &a.subject_id)
        .cmp(&(b.decided_at, b.rule, &b.subject_id)));
    entries.into_iter().map(|e| e.mismatch_id.clone()).collect()
}

fn entry_mut<'a>(state: &'a mut OrderState, mid: &str) -> &'a mut LedgerEntry {
    crate::model::get_mut(&mut state.book.ledger, mid).expect("a ledger entry")
}

#[pyclass(module = "streams._native")]
pub struct PartitionEngine {
    plan: Plan,
    host: Host,
    #[pyo3(get)]
    py_rules: Py<PyAny>,
    /// whether the last `on_event` was a new event (False: a redelivery, ignored)
    #[pyo3(get)]
    last_was_new: bool,
    order_class: Py<PyType>,
    /// time `on_record` spent reading values, not yet taken (`take_decode_seconds`)
    decode_nanos: u64,
    /// whether decisions are made early, at their rule's own watermark
    early_on: bool,
    /// rule -> the decisions that would fire, by (due, order_id, key), for the early
    /// decisions; each rule's watermark (never backwards)
    early: Mutex<HashMap<i64, BinaryHeap<Reverse<(i64, String, String)>>>>,
    early_kept: Mutex<HashSet<u64>>,
    /// the meta the early decisions are computed from, kept up to date (`decide_early`)
    snapshot: Mutex<Option<watermark::Snapshot>>,
    marks: Mutex<HashMap<i64, i64>>,
}

type Out = Vec<Py<PyAny>>;

impl PartitionEngine {
    fn order_of<'py>(&self, py: Python<'py>, order_id: &str) -> PyResult<Option<Bound<'py, NativeOrder>>> {
        self.host.get_order(py, order_id)
    }

    fn index(&self, py: Python<'_>, state: &mut OrderState, due: i64, limit: Option<i64>) -> PyResult<()> {
        if limit.map_or(true, |l| due > l) && !state.book.dues.contains(&due) {
            state.book.dues.push(due);
            self.host.add_due(py, due, &state.order_id)?;
        }
        Ok(())
    }

    fn extend_expiry(&self, py: Python<'_>, state: &mut OrderState, time: i64, limit: Option<i64>)
        -> PyResult<()> {
        let expire_at = time + self.plan.rules.allowed_lateness;
        if state.book.expire_at.map_or(true, |e| expire_at > e) {
            let armed = state.book.expire_at.is_some_and(|e| state.book.dues.contains(&e));
            state.book.expire_at = Some(expire_at);
            if !armed {
                self.index(py, state, expire_at, limit)?;
            }
        }
        Ok(())
    }

    /// Index the order at each pending decision that would fire if made now (`_arm`).
    fn arm(&self, py: Python<'_>, state: &mut OrderState, since: i64, wm: Option<i64>)
        -> PyResult<()> {
        let low = wm.map_or(since - 1, |w| w.max(since - 1));
        let armed: Vec<Decision> = {
            let view = View::new(&state.order_id, &state.logs);
            due_between(&view, &self.plan, Some(low), crate::model::FOREVER).into_iter()
                .filter(|d| fires(d, &view, &self.plan))
                .collect()
        };
        for d in &armed {
            self.index(py, state, d.due, wm)?;
        }
        if self.early_on && !armed.is_empty() {
            let mut early = self.early.lock().expect("early");
            let mut kept = self.early_kept.lock().expect("early");
            for d in armed {
                // kept once (a 64-bit digest: a collision only leaves a decision to the
                // partition's watermark)
                if kept.insert(early_digest(d.rule, d.due, &state.order_id, &d.key)) {
                    early.entry(d.rule).or_default()
                        .push(Reverse((d.due, state.order_id.clone(), d.key)));
                }
            }
        }
        Ok(())
    }

    /// The kept decisions each rule's own watermark has passed, made in (due, rule,
    /// order_id, key) order (`PartitionEngine._decide_early`).
    fn decide_early(&self, py: Python<'_>, meta: &Bound<'_, PyAny>, out: &mut Out,
                    event: Option<(Source, i64, Option<i64>)>) -> PyResult<()> {
        let mut cached = self.snapshot.lock().expect("early");
        if self.early.lock().expect("early").is_empty() {
            *cached = None;
            return Ok(());
        }
        // the meta as read once, then kept up to date with the events (any other change
        // of the meta goes through set_idle, set_released or advance_to: read again)
        match (cached.as_mut(), event) {
            (Some(snap), Some((source, time, after))) => snap.observe(source, time, after),
            _ => *cached = Some(watermark::Snapshot::read(meta)?),
        }
        let snap = cached.as_ref().expect("read");
        let wm = snap.watermark;
        let lateness = self.plan.rules.allowed_lateness;
        let mut ready: Vec<(i64, i64, String, String)> = Vec::new();
        {
            let mut early = self.early.lock().expect("early");
            let mut kept = self.early_kept.lock().expect("early");
            let mut marks = self.marks.lock().expect("early");
            for (&rule, heap) in early.iter_mut() {
                if heap.is_empty() {
                    continue;
                }
                let mut mark = marks.get(&rule).copied();
                if let Some(new) = snap.rule_candidate(self.plan.decided_on(rule), lateness) {
                    if mark.map_or(true, |m| new > m) {
                        marks.insert(rule, new);
                        mark = Some(new);
                    }
                }
                let Some(mark) = mark else { continue };
                while heap.peek().is_some_and(|Reverse((due, _, _))| *due <= mark) {
                    let Reverse((due, order_id, key)) = heap.pop().expect("peeked");
                    kept.remove(&early_digest(rule, due, &order_id, &key));
                    if wm.map_or(true, |w| due > w) {
                        ready.push((due, rule, order_id, key));
                    }
                }
            }
        }
        ready.sort();
        let limit = wm.unwrap_or(-crate::model::FOREVER);
        for (due, rule, order_id, key) in ready {
            let Some(order) = self.order_of(py, &order_id)? else { continue };
            let emitted = out.len();
            {
                let mut guard = order.borrow_mut();
                self.decide(py, &mut guard.state, &Decision { due, rule, key }, limit, out, None)?;
            }
            if out.len() > emitted {
                self.settle(py, &order, wm, wm, true)?;
            }
        }
        Ok(())
    }

    fn rearm(&self, py: Python<'_>, state: &mut OrderState, until: i64) -> PyResult<bool> {
        let Some(expire_at) = state.book.expire_at else { return Ok(false) };
        if state.book.dues.iter().any(|d| *d > until) {
            return Ok(false);
        }
        self.index(py, state, expire_at, Some(until))?;
        Ok(true)
    }

    fn apply(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, event: &Event, wm: Option<i64>,
             out: &mut Out) -> PyResult<()> {
        let mut guard = order.borrow_mut();
        let state = &mut guard.state;
        place(&mut state.logs, event);
        let new = {
            let view = View::new(&state.order_id, &state.logs);
            new_decisions(&view, event, &self.plan)
        };
        let latest = new.iter().map(|d| d.due)
            .fold(event.step.event_time + self.plan.rules.state_retention, i64::max);
        self.extend_expiry(py, state, latest, wm)?;
        let mut rechecks: Vec<i64> = Vec::new();
        let late = wm.is_some_and(|w| event.step.event_time <= w);
        let mut now: Vec<Decision> = new.into_iter().filter(|d| wm.is_some_and(|w| d.due <= w))
            .collect();
        if let (true, Some(w)) = (late, wm) {
            // a late event can change any decision already made at or after its time: each
            // is made again (the ledger keeps an OPEN or a command from repeating)
            let view = View::new(&state.order_id, &state.logs);
            now.extend(due_between(&view, &self.plan, Some(event.step.event_time - 1), w));
            now.sort();
            now.dedup();
        }
        if let Some(w) = wm {
            for decision in &now {
                self.decide(py, state, decision, w, out, Some(&mut rechecks))?;
            }
        }
        self.arm(py, state, event.step.event_time, wm)?;
        if late {
            self.late_recheck(py, state, event, out)?;
            rechecks.sort_unstable();
            rechecks.dedup();
            for at in rechecks {
                self.recheck(py, state, at, out)?;
            }
        } else if state.has_open() {
            self.index(py, state, event.step.event_time, wm)?;
        }
        drop(guard);
        self.settle(py, order, wm, wm, true)
    }

    fn settle(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, limit: Option<i64>,
              wm: Option<i64>, changed: bool) -> PyResult<()> {
        let mut guard = order.borrow_mut();
        let state = &mut guard.state;
        let expired = matches!((state.book.expire_at, limit), (Some(e), Some(l)) if l >= e);
        if expired {
            let order_id = state.order_id.clone();
            if state.book.ledger.is_empty() {
                drop(guard);
                return self.host.delete_order(py, &order_id);
            }
            for (_, entry) in state.book.ledger.iter_mut() {
                entry.frozen = true;
            }
            state.logs = Default::default();
            state.book.dues.clear();
            state.book.expire_at = None;
            drop(guard);
            return self.host.put_order(py, &order_id, order);
        }
        if changed {
            if let Some(w) = wm {
                state.book.dues.retain(|d| *d > w);
            }
            let order_id = state.order_id.clone();
            drop(guard);
            self.host.put_order(py, &order_id, order)?;
        }
        Ok(())
    }

    fn drain(&self, py: Python<'_>, before: Option<i64>, wm: Option<i64>, out: &mut Out)
        -> PyResult<()> {
        let Some(wm) = wm else { return Ok(()) };
        let mut handled: HashMap<String, i64> = HashMap::new();
        loop {
            let entries = self.host.pop_due(py, wm)?;
            if entries.is_empty() {
                return Ok(());
            }
            for (due, order_id) in entries {
                let since = handled.get(&order_id).copied().or(before);
                if since.is_some_and(|s| due <= s) {
                    continue;
                }
                let Some(order) = self.order_of(py, &order_id)? else { continue };
                handled.insert(order_id, due);
                self.wake(py, &order, since, due, wm, out)?;
            }
        }
    }

    fn wake(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, since: Option<i64>, until: i64,
            wm: i64, out: &mut Out) -> PyResult<()> {
        let emitted = out.len();
        let mut changed;
        {
            let mut guard = order.borrow_mut();
            let state = &mut guard.state;
            let (decisions, times) = {
                let view = View::new(&state.order_id, &state.logs);
                let decisions = due_between(&view, &self.plan, since, until);
                let times = if !decisions.is_empty() || !open_entries(state).is_empty() {
                    view.event_times_between(since, until)
                } else {
                    Vec::new()
                };
                (decisions, times)
            };
            // (due, kind, rule, key): decisions (0) before rechecks (1) at one due
            let mut work: Vec<(i64, i64, i64, String)> =
                decisions.into_iter().map(|d| (d.due, 0, d.rule, d.key)).collect();
            if !times.is_empty() {
                work.extend(times.into_iter().map(|t| (t, 1, 0, String::new())));
                work.sort();
            }
            for (due, kind, rule, key) in work {
                if kind == 0 {
                    self.decide(py, state, &Decision { due, rule, key }, until, out, None)?;
                } else if !state.book.ledger.is_empty() {
                    self.recheck(py, state, due, out)?;
                }
            }
            changed = out.len() > emitted;
            if state.book.expire_at.is_some_and(|e| until < e) {
                changed = self.rearm(py, state, until)? || changed;
            }
        }
        self.settle(py, order, Some(until), Some(wm), changed)
    }

    fn decide(&self, py: Python<'_>, state: &mut OrderState, decision: &Decision, limit: i64,
              out: &mut Out, mut rechecks: Option<&mut Vec<i64>>) -> PyResult<()> {
        let (mut findings, times) = {
            let view = View::new(&state.order_id, &state.logs);
            let findings = decide(decision, &view, &self.plan);
            let times = if findings.is_empty() { Vec::new() } else { view.event_times() };
            (findings, times)
        };
        findings.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
        for finding in findings {
            self.open(py, state, finding, limit, &times, out, rechecks.as_deref_mut())?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn open(&self, py: Python<'_>, state: &mut OrderState, f: Finding, limit: i64, times: &[i64],
            out: &mut Out, rechecks: Option<&mut Vec<i64>>) -> PyResult<()> {
        let spec = rule(f.rule).expect("a finding of the table's rule");
        let mid = mismatch_id(spec.kind, &state.order_id, &f.subject_id);
        if crate::model::get(&state.book.ledger, &mid).is_some() {
            return Ok(());
        }
        let now = self.host.now(py)?;
        let entry = LedgerEntry {
            mismatch_id: mid.clone(),
            kind: spec.kind.to_string(),
            rule: f.rule,
            subject_id: f.subject_id.clone(),
            key: f.key.clone(),
            severity: spec.severity.to_string(),
            decided_at: f.decided_at,
            trigger_time: f.trigger_time,
            evidence: f.evidence.clone(),
            details: f.details.clone(),
            command_id: f.command.as_ref().map(|c| c.command_id()),
            status: OPEN.to_string(),
            resolved_at: None,
            resolved_by: None,
            frozen: false,
        };
        out.push(self.host.mismatch(py, &state.order_id, &entry, &now)?.unbind());
        state.book.ledger.push((mid.clone(), entry));
        if let Some(command) = &f.command {
            let cid = command.command_id();
            if !state.book.commands.contains(&cid) {
                out.push(self.host.command(py, &state.order_id, command, &mid, &now)?.unbind());
                state.book.commands.push(cid);
            }
        }
        if spec.resolvable {
            let mut rechecks = rechecks;
            for &time in times {
                if time <= f.decided_at {
                    continue;
                }
                if time > limit {
                    self.index(py, state, time, Some(limit))?;
                } else if let Some(r) = rechecks.as_deref_mut() {
                    r.push(time);
                }
            }
        }
        Ok(())
    }

    fn recheck(&self, py: Python<'_>, state: &mut OrderState, at: i64, out: &mut Out) -> PyResult<()> {
        let entries: Vec<String> = open_entries(state).into_iter()
            .filter(|mid| crate::model::get(&state.book.ledger, mid).is_some_and(|e| e.decided_at < at))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let resolve_by: Vec<(String, String)> = {
            let view = View::new(&state.order_id, &state.logs);
            let Some(first) = view.first_event_at(at) else { return Ok(()) };
            entries.into_iter().filter(|mid| {
                let e = crate::model::get(&state.book.ledger, mid).expect("entry");
                !holds(e.rule, &e.subject_id, &e.key, e.trigger_time, &view, at)
            }).map(|mid| (mid, first.event_id.clone())).collect()
        };
        for (mid, by) in resolve_by {
            self.resolve(py, state, &mid, at, &by, out)?;
        }
        Ok(())
    }

    fn late_recheck(&self, py: Python<'_>, state: &mut OrderState, event: &Event, out: &mut Out)
        -> PyResult<()> {
        let t = event.step.event_time;
        let resolving: Vec<String> = {
            let view = View::new(&state.order_id, &state.logs);
            open_entries(state).into_iter().filter(|mid| {
                let e = crate::model::get(&state.book.ledger, mid).expect("entry");
                !holds(e.rule, &e.subject_id, &e.key, e.trigger_time, &view, t.max(e.decided_at))
            }).collect()
        };
        for mid in resolving {
            self.resolve(py, state, &mid, t, &event.step.event_id, out)?;
        }
        Ok(())
    }

    fn resolve(&self, py: Python<'_>, state: &mut OrderState, mid: &str, at: i64, by: &str,
               out: &mut Out) -> PyResult<()> {
        let order_id = state.order_id.clone();
        let entry = entry_mut(state, mid);
        entry.status = RESOLVED.to_string();
        entry.resolved_at = Some(at);
        entry.resolved_by = Some(by.to_string());
        let now = self.host.now(py)?;
        out.push(self.host.mismatch(py, &order_id, entry, &now)?.unbind());
        Ok(())
    }

    /// Apply one input event of `order_id` (`on_event`, `on_record`): its outputs and the
    /// watermark after it.
    fn judge(&mut self, py: Python<'_>, ev: &Event, order_id: &str)
        -> PyResult<(Out, Option<i64>)> {
        let mut out: Out = Vec::new();
        let meta = self.host.meta(py)?;
        let before = watermark::watermark(&meta)?;
        let order = match self.order_of(py, order_id)? {
            Some(order) => order,
            None => Bound::new(py, NativeOrder { state: OrderState::new(order_id) })?,
        };
        let known = {
            let guard = order.borrow();
            View::new(&guard.state.order_id, &guard.state.logs).has_event(&ev.step.event_id)
        };
        self.last_was_new = !known;
        if !known {
            self.apply(py, &order, ev, before, &mut out)?;
        }
        watermark::observe(&meta, ev.source, ev.step.event_time, self.plan.rules.allowed_lateness)?;
        self.host.put_meta(py, &meta)?;
        let after = watermark::watermark(&meta)?;
        self.drain(py, before, after, &mut out)?;
        self.decide_early(py, &meta, &mut out, Some((ev.source, ev.step.event_time, after)))?;
        Ok((out, after))
    }

    /// After a change of the meta from watermark `before` (`set_idle`, `set_released`,
    /// `advance_to`): store it, and what the partition's and the rules' watermarks decide.
    fn moved(&self, py: Python<'_>, meta: &Bound<'_, PyAny>, before: Option<i64>) -> PyResult<Out> {
        self.host.put_meta(py, meta)?;
        let after = watermark::watermark(meta)?;
        let mut out: Out = Vec::new();
        self.drain(py, before, after, &mut out)?;
        self.decide_early(py, meta, &mut out, None)?;
        Ok(out)
    }

    fn into_list(py: Python<'_>, out: Out) -> PyResult<Bound<'_, PyList>> {
        PyList::new(py, out)
    }
}

#[pymethods]
impl PartitionEngine {
    #[new]
    #[pyo3(signature = (rules, store, clock, early = true))]
    fn new(py: Python<'_>, rules: Py<PyAny>, store: Py<PyAny>, clock: Py<PyAny>, early: bool)
        -> PyResult<Self> {
        let plan = Plan::new(rules_of(rules.bind(py))?, None).map_err(PyValueError::new_err)?;
        Ok(PartitionEngine {
            plan,
            host: Host::new(py, store, clock)?,
            py_rules: rules,
            last_was_new: false,
            order_class: py.get_type::<NativeOrder>().unbind(),
            decode_nanos: 0,
            early_on: early,
            early: Mutex::new(HashMap::new()),
            early_kept: Mutex::new(HashSet::new()),
            snapshot: Mutex::new(None),
            marks: Mutex::new(HashMap::new()),
        })
    }

    #[getter]
    fn rules(&self, py: Python<'_>) -> Py<PyAny> {
        self.py_rules.clone_ref(py)
    }

    #[getter]
    fn store(&self, py: Python<'_>) -> Py<PyAny> {
        self.host.store.clone_ref(py)
    }

    #[getter]
    fn clock(&self, py: Python<'_>) -> Py<PyAny> {
        self.host.clock.clone_ref(py)
    }

    /// The partition's current watermark (None before there is one).
    #[getter]
    fn watermark(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        watermark::watermark(&self.host.meta(py)?)
    }

    /// Apply one input event (a `streams.model.Event`, or a `NativeEvent` of `read_record`);
    /// the mismatches and commands it leads to, in order.
    fn on_event<'py>(&mut self, py: Python<'py>, event: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let (out, _) = if let Ok(native) = event.cast::<NativeEvent>() {
            let native = native.get();
            self.judge(py, &native.event, &native.order_id)?
        } else {
            let (ev, order_id) = self.host.event(event)?;
            self.judge(py, &ev, &order_id)?
        };
        Self::into_list(py, out)
    }

    /// An input record's value read here (`record.rs`: the reading of `streams.fastdecode`)
    /// and applied as `on_event` applies its Event, in one call: when the value is framed
    /// with `schema_id` (the id its topic's schema has), certainly valid, and its order_id's
    /// murmur2 partition of `partitions` is `partition` (the record's). Then (outputs, the
    /// event's type, event_time, amount, currency: what the metrics count, and the
    /// watermark after it); else None, and nothing was done: the caller's checked path
    /// (decode, partition check, `on_event`) decides, as it does for any record. The time
    /// spent reading is added to what `take_decode_seconds` takes.
    fn on_record<'py>(&mut self, py: Python<'py>, source: &Bound<'py, PyAny>, value: &[u8],
                      schema_id: u32, partition: u32, partitions: u32)
        -> PyResult<Option<Bound<'py, PyTuple>>> {
        let source = self.host.source_of(source)?;
        let began = Instant::now();
        let read = read_home(source, value, schema_id, partition, partitions);
        self.decode_nanos += began.elapsed().as_nanos() as u64;
        let Some((ev, order_id)) = read else { return Ok(None) };
        let (out, watermark) = self.judge(py, &ev, &order_id)?;
        let kind = PyString::intern(py, &ev.kind);
        Ok(Some(PyTuple::new(py, [
            Self::into_list(py, out)?.into_any(),
            kind.into_any(),
            ev.step.event_time.into_bound_py_any(py)?,
            ev.step.amount.into_bound_py_any(py)?,
            ev.step.currency.as_deref().into_bound_py_any(py)?,
            watermark.into_bound_py_any(py)?,
        ])?))
    }

    /// Seconds `on_record` spent reading values since the last call (then 0 again).
    fn take_decode_seconds(&mut self) -> f64 {
        let nanos = std::mem::take(&mut self.decode_nanos);
        nanos as f64 / 1e9
    }


    /// Mark an input source idle (or active again); what the watermark move decides.
    fn set_idle<'py>(&mut self, py: Python<'py>, source: &Bound<'py, PyAny>, idle: bool)
        -> PyResult<Bound<'py, PyList>> {
        let source = self.host.source_of(source)?;
        let meta = self.host.meta(py)?;
        let before = watermark::watermark(&meta)?;
        watermark::set_idle(&meta, source, idle, self.plan.rules.allowed_lateness)?;
        let out = self.moved(py, &meta, before)?;
        Self::into_list(py, out)
    }

    /// Release an input source stalled past source_hold (it stops holding the watermark),
    /// or hold it again; what the watermark move decides.
    fn set_released<'py>(&mut self, py: Python<'py>, source: &Bound<'py, PyAny>, released: bool)
        -> PyResult<Bound<'py, PyList>> {
        let source = self.host.source_of(source)?;
        let meta = self.host.meta(py)?;
        let before = watermark::watermark(&meta)?;
        watermark::set_released(&meta, source, released, self.plan.rules.allowed_lateness)?;
        let out = self.moved(py, &meta, before)?;
        Self::into_list(py, out)
    }

    /// Force the watermark to `watermark` (never backwards); what that decides.
    fn advance_to<'py>(&mut self, py: Python<'py>, watermark: i64) -> PyResult<Bound<'py, PyList>> {
        let meta = self.host.meta(py)?;
        let before = watermark::watermark(&meta)?;
        watermark::force(&meta, watermark)?;
        let out = self.moved(py, &meta, before)?;
        Self::into_list(py, out)
    }

    /// The NativeOrder class (what the stores hold).
    #[getter]
    fn order_type(&self, py: Python<'_>) -> Py<PyType> {
        self.order_class.clone_ref(py)
    }
}
