//! The streaming decision engine of one partition number (`streams/engine/partition.py`): the
//! same processing model, step for step, over orders held as `NativeOrder` objects. This is
//! the class Python calls; an order's handling is in `work.rs`, the early decisions in
//! `early.rs`, the order objects in `order.rs`.

use std::sync::Mutex;
use std::time::Instant;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};
use pyo3::IntoPyObjectExt;

use crate::early::Early;
use crate::host::Host;
use crate::model::{Decision, Event, Mode, OrderState, Own, Rules, Source};
use crate::order::{read_home, NativeEvent, NativeOrder};
use crate::table::RULES;
use crate::triggers::Plan;
use crate::view::View;
use crate::watermark;

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
    let own_delays: Vec<(String, i64)> = obj.getattr("per_rule")?.try_iter()?
        .map(|s| -> PyResult<Option<(String, i64)>> {
            let s = s?;
            let threshold = s.getattr("threshold")?;
            if threshold.is_none() {
                return Ok(None);
            }
            Ok(Some((s.getattr("type")?.extract()?, threshold.extract()?)))
        })
        .filter_map(Result::transpose)
        .collect::<PyResult<_>>()?;
    let mut own = Vec::new();
    for r in RULES.iter() {
        let mode: String = obj.call_method1("mode_of", (r.kind,))?.str()?.extract()?;
        own.push(Own {
            enabled: obj.call_method1("enabled", (r.kind,))?.extract()?,
            delay: own_delays.iter().find(|(t, _)| t == r.kind).map(|(_, d)| *d),
            severity: obj.call_method1("severity_of", (r.kind, r.severity))?.str()?.extract()?,
            mode: match mode.as_str() {
                "shadow" => Mode::Shadow,
                "off" => Mode::Off,
                _ => Mode::Live,
            },
        });
    }
    Ok(Rules {
        allowed_lateness: get("allowed_lateness")?,
        state_retention: get("state_retention")?,
        settings,
        own,
    })
}

/// The engine of one partition number (`streams.engine.partition.PartitionEngine`).
#[pyclass(module = "streams._native")]
pub struct PartitionEngine {
    pub(crate) plan: Plan,
    pub(crate) host: Host,
    #[pyo3(get)]
    py_rules: Py<PyAny>,
    /// whether the last `on_event` was a new event (False: a redelivery, ignored)
    #[pyo3(get)]
    last_was_new: bool,
    order_class: Py<PyType>,
    /// time `on_record` spent reading values, not yet taken (`take_decode_seconds`)
    decode_nanos: u64,
    /// whether decisions are made early, at their rule's own watermark
    pub(crate) early_on: bool,
    /// the decisions that would fire, kept by rule for their rule's watermark
    pub(crate) early: Mutex<Early>,
}

/// The outputs of a call, in order.
pub type Out = Vec<Py<PyAny>>;

impl PartitionEngine {
    pub(crate) fn order_of<'py>(&self, py: Python<'py>, order_id: &str) -> PyResult<Option<Bound<'py, NativeOrder>>> {
        self.host.get_order(py, order_id)
    }

    /// The kept decisions each rule's own watermark has passed, made in (due, rule,
    /// order_id, key) order (`PartitionEngine._decide_early`).
    fn decide_early(&self, py: Python<'_>, meta: &Bound<'_, PyAny>, out: &mut Out,
                    event: Option<(Source, i64, Option<i64>)>) -> PyResult<()> {
        let (wm, ready) = {
            let mut early = self.early.lock().expect("early");
            match early.see(meta, event)? {
                None => return Ok(()),
                Some(wm) => (wm, early.take_ready(&self.plan, self.plan.rules.allowed_lateness)),
            }
        };
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
            early: Mutex::new(Early::new()),
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
