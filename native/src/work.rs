//! An order's handling by the engine (`streams/engine/partition.py`'s `_apply`, `_arm`,
//! `_drain`, `_wake`, `_decide`, `_open`, `_recheck`, `_settle`): an event applied, its
//! pending decisions armed, the index drained, decisions made, mismatches opened, rechecked
//! and resolved, the order evicted or written back.

use std::collections::HashMap;

use pyo3::prelude::*;

use crate::catalog::{decide, fires, holds, Finding};
use crate::engine::{Out, PartitionEngine};
use crate::ids::mismatch_id;
use crate::model::{ledger_key, Decision, Event, LedgerEntry, Mode, OrderState, OPEN, RESOLVED};
use crate::order::NativeOrder;
use crate::table::rule;
use crate::triggers::{due_between, new_decisions};
use crate::view::{place, View};

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

impl PartitionEngine {
    pub(crate) fn index(&self, py: Python<'_>, state: &mut OrderState, due: i64, limit: Option<i64>) -> PyResult<()> {
        if limit.map_or(true, |l| due > l) && !state.book.dues.contains(&due) {
            state.book.dues.push(due);
            self.host.add_due(py, due, &state.order_id)?;
        }
        Ok(())
    }

    pub(crate) fn extend_expiry(&self, py: Python<'_>, state: &mut OrderState, time: i64, limit: Option<i64>)
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
    pub(crate) fn arm(&self, py: Python<'_>, state: &mut OrderState, since: i64, wm: Option<i64>)
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
            for d in armed {
                early.keep(d.rule, d.due, &state.order_id, d.key);
            }
        }
        Ok(())
    }

    pub(crate) fn rearm(&self, py: Python<'_>, state: &mut OrderState, until: i64) -> PyResult<bool> {
        let Some(expire_at) = state.book.expire_at else { return Ok(false) };
        if state.book.dues.iter().any(|d| *d > until) {
            return Ok(false);
        }
        self.index(py, state, expire_at, Some(until))?;
        Ok(true)
    }

    pub(crate) fn apply(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, event: &Event, wm: Option<i64>,
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

    pub(crate) fn settle(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, limit: Option<i64>,
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

    pub(crate) fn drain(&self, py: Python<'_>, before: Option<i64>, wm: Option<i64>, out: &mut Out)
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

    pub(crate) fn wake(&self, py: Python<'_>, order: &Bound<'_, NativeOrder>, since: Option<i64>, until: i64,
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

    pub(crate) fn decide(&self, py: Python<'_>, state: &mut OrderState, decision: &Decision, limit: i64,
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
        let own = self.plan.rules.own(f.rule);
        let mode = own.map_or(Mode::Live, |o| o.mode);
        let entry = LedgerEntry {
            mismatch_id: mid.clone(),
            kind: spec.kind.to_string(),
            rule: f.rule,
            subject_id: f.subject_id.clone(),
            key: f.key.clone(),
            severity: own.map_or_else(|| spec.severity.to_string(), |o| o.severity.clone()),
            decided_at: f.decided_at,
            trigger_time: f.trigger_time,
            evidence: f.evidence.clone(),
            details: f.details.clone(),
            command_id: f.command.as_ref().filter(|_| mode != Mode::Off).map(|c| c.command_id()),
            status: OPEN.to_string(),
            resolved_at: None,
            resolved_by: None,
            frozen: false,
        };
        out.push(self.host.mismatch(py, &state.order_id, &entry, &now)?.unbind());
        state.book.ledger.push((mid.clone(), entry));
        if let Some(command) = f.command.as_ref().filter(|_| mode != Mode::Off) {
            // `rulebook.issue_as`: live at most once, shadow at most once; shadow stays shadow
            let cid = command.command_id();
            let went_live = state.book.commands.contains(&cid);
            let shadow = mode == Mode::Shadow;
            let key = ledger_key(&cid, shadow);
            if !went_live && (!shadow || !state.book.commands.contains(&key)) {
                out.push(self.host.command(py, &state.order_id, command, &mid, &now, shadow)?
                    .unbind());
                state.book.commands.push(key);
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

    pub(crate) fn recheck(&self, py: Python<'_>, state: &mut OrderState, at: i64, out: &mut Out) -> PyResult<()> {
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

    pub(crate) fn late_recheck(&self, py: Python<'_>, state: &mut OrderState, event: &Event, out: &mut Out)
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

    pub(crate) fn resolve(&self, py: Python<'_>, state: &mut OrderState, mid: &str, at: i64, by: &str,
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
}
