//! Decisions and their trigger events, derived from the rule table's triggers
//! (`streams/rules/triggers.py`): `due_between`, `trigger_of` and `new_decisions` read the
//! rules' `Trigger` entries through a `Plan`, built once per engine.

use crate::model::{Decision, Event, Rules, Source, Step, FOREVER};
use crate::spec::Trigger;
use crate::table::{rule, RULES};
use crate::view::{first_by_trigger, View};

/// One rule's trigger with its delay for the engine's settings.
#[derive(Clone, Debug)]
pub struct Armed {
    pub rule: i64,
    pub source: Source,
    /// the trigger types' ranks, as bits (1 << rank)
    pub ranks: u32,
    pub delay: i64,
    pub first: bool,
    /// the rank of the order event type D waits for
    pub after: Option<i64>,
}

impl Armed {
    fn takes(&self, rank: i64) -> bool {
        (0..32).contains(&rank) && self.ranks & (1 << rank) != 0
    }
}

fn slot(source: Source) -> usize {
    match source {
        Source::Orders => 0,
        Source::Payments => 1,
        Source::Inventory => 2,
        Source::Shipping => 3,
    }
}

/// The triggers of the rules in force with their delays, grouped as the functions here
/// read them (`triggers.Plan`).
#[derive(Debug)]
pub struct Plan {
    pub rules: Rules,
    armed: Vec<Armed>,
    /// rule number -> its index in `armed`
    by_rule: Vec<Option<usize>>,
    /// source slot -> rank -> the triggers an event of that type is (or may be) one of
    on: [Vec<Vec<usize>>; 4],
    /// rank of an order event -> the triggers whose D waits for the order's first of them
    anchored: Vec<Vec<usize>>,
    /// per source with triggers: the triggers of every event of their types, the `first` ones
    sources: Vec<(Source, Vec<usize>, Vec<usize>)>,
    /// rule number -> the inputs its own watermark is over
    decided_on: Vec<Vec<Source>>,
}

impl Plan {
    /// The plan of the rules `numbers` (None: every rule of the table) that `rules` leaves
    /// on, each with its own duration where it has one; an error names a trigger type or
    /// setting that does not exist.
    pub fn new(rules: Rules, numbers: Option<&[i64]>) -> Result<Plan, String> {
        let triggers: Vec<(i64, &Trigger)> = RULES.iter()
            .filter(|r| numbers.is_none_or(|n| n.contains(&r.number)))
            .filter(|r| rules.own(r.number).is_none_or(|o| o.enabled))
            .map(|r| (r.number, &r.trigger))
            .collect();
        Self::of(rules, &triggers)
    }

    /// The plan of these (rule number, trigger) pairs.
    pub fn of(rules: Rules, triggers: &[(i64, &Trigger)]) -> Result<Plan, String> {
        let mut armed = Vec::new();
        for &(number, t) in triggers {
            let mut ranks = 0u32;
            for kind in t.types {
                let rank = t.source.rank_of(kind)
                    .ok_or_else(|| format!("rule {number}: {} has no type {kind}", t.source.name()))?;
                ranks |= 1 << rank;
            }
            let delay = match (t.delay, rules.own(number).and_then(|o| o.delay)) {
                (None, _) => 0,
                (Some(_), Some(own)) => own,
                (Some(name), None) => rules.setting(name)
                    .ok_or_else(|| format!("rule {number}: no setting {name}"))?,
            };
            let after = match t.after {
                None => None,
                Some(kind) => Some(Source::Orders.rank_of(kind)
                    .ok_or_else(|| format!("rule {number}: orders have no type {kind}"))?),
            };
            if after.is_some() && (t.first || t.source == Source::Orders) {
                return Err(format!("rule {number}: `after` with `first` or on an order event"));
            }
            armed.push(Armed { rule: number, source: t.source, ranks, delay, first: t.first, after });
        }
        let top = armed.iter().map(|a| a.rule).chain(RULES.iter().map(|r| r.number)).max()
            .unwrap_or(0) as usize;
        let mut by_rule = vec![None; top + 1];
        for (i, a) in armed.iter().enumerate() {
            by_rule[a.rule as usize] = Some(i);
        }
        let on = Source::ALL.map(|s| {
            (0..s.lifecycle().len() as i64)
                .map(|rank| (0..armed.len()).filter(|&i| armed[i].source == s && armed[i].takes(rank))
                    .collect())
                .collect()
        });
        let anchored = (0..Source::Orders.lifecycle().len() as i64)
            .map(|rank| (0..armed.len()).filter(|&i| armed[i].after == Some(rank)).collect())
            .collect();
        let mut sources = Vec::new();
        for s in Source::ALL {
            let every: Vec<usize> = (0..armed.len()).filter(|&i| armed[i].source == s && !armed[i].first).collect();
            let firsts: Vec<usize> = (0..armed.len()).filter(|&i| armed[i].source == s && armed[i].first).collect();
            if !every.is_empty() || !firsts.is_empty() {
                sources.push((s, every, firsts));
            }
        }
        let in_force: Vec<i64> = armed.iter().map(|a| a.rule).collect();
        let decided_on = (0..=top as i64).map(|n| decided_on_of(n, &in_force)).collect();
        Ok(Plan { rules, armed, by_rule, on, anchored, sources, decided_on })
    }

    /// The trigger of rule `number`, if it is in force.
    pub fn armed(&self, number: i64) -> Option<&Armed> {
        let i = usize::try_from(number).ok().and_then(|n| self.by_rule.get(n).copied().flatten())?;
        Some(&self.armed[i])
    }

    /// The inputs rule `number`'s own watermark is over (`catalog.DECIDED_ON`).
    pub fn decided_on(&self, number: i64) -> &[Source] {
        usize::try_from(number).ok().and_then(|n| self.decided_on.get(n)).map_or(&[], |v| v)
    }
}

/// What a rule reads, and what the rules that can call for a command of the same type read:
/// those decide together, so that a command two rules call for is issued with the earliest
/// decision, whichever input lags. Only the rules in force (`on`) widen it
/// (`catalog.decided_on`).
fn decided_on_of(number: i64, on: &[i64]) -> Vec<Source> {
    let Some(r) = rule(number) else { return Vec::new() };
    let command = r.command.as_ref().map(|c| c.kind);
    let mut found: Vec<Source> = Vec::new();
    for other in &RULES {
        let same = other.number == number
            || (command.is_some() && on.contains(&other.number)
                && other.command.as_ref().map(|c| c.kind) == command);
        if same {
            found.extend(other.reads.iter().copied());
        }
    }
    Source::ALL.into_iter().filter(|s| found.contains(s)).collect()
}

/// The order's first own event of `rank` by (event_time, event_id), up to `at`.
fn anchor<'a>(view: &View<'a>, rank: i64, at: i64) -> Option<&'a Step> {
    first_by_trigger(view.history(Source::Orders, view.order_id, at).iter().filter(|s| s.rank == rank))
}

/// The decisions with low < due <= high (low None: no bound), sorted and distinct.
pub fn due_between(view: &View, plan: &Plan, low: Option<i64>, high: i64) -> Vec<Decision> {
    let low = low.unwrap_or(-FOREVER);
    let mut found: Vec<Decision> = Vec::new();
    let mut anchors: [Option<Option<i64>>; 8] = [None; 8];
    for (source, every, firsts) in &plan.sources {
        for (key, log) in view.entity_logs(*source) {
            for s in log {
                for &i in every {
                    let a = &plan.armed[i];
                    if !a.takes(s.rank) {
                        continue;
                    }
                    let mut t = s.event_time;
                    if let Some(after) = a.after {
                        let cached = &mut anchors[after as usize];
                        let floor = *cached.get_or_insert_with(|| anchor(view, after, FOREVER).map(|p| p.event_time));
                        let Some(floor) = floor else { continue };
                        t = t.max(floor);
                    }
                    let due = t + a.delay;
                    if low < due && due <= high {
                        found.push(Decision { due, rule: a.rule, key: key.to_string() });
                    }
                }
            }
            for &i in firsts {
                let a = &plan.armed[i];
                if let Some(first) = first_by_trigger(log.iter().filter(|s| a.takes(s.rank))) {
                    let due = first.event_time + a.delay;
                    if low < due && due <= high {
                        found.push(Decision { due, rule: a.rule, key: key.to_string() });
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The trigger of a decision as of its time D; None if the events up to D do not call for it.
pub fn trigger_of<'a>(view: &View<'a>, plan: &Plan, d: &Decision) -> Option<&'a Step> {
    let at = d.due;
    let a = plan.armed(d.rule)?;
    let history = view.history(a.source, &d.key, at);
    if a.first {
        let first = first_by_trigger(history.iter().filter(|s| a.takes(s.rank)))?;
        return (first.event_time + a.delay == at).then_some(first);
    }
    match a.after {
        None => first_by_trigger(history.iter()
            .filter(|s| a.takes(s.rank) && s.event_time + a.delay == at)),
        Some(after) => {
            let floor = anchor(view, after, at)?.event_time;
            first_by_trigger(history.iter()
                .filter(|s| a.takes(s.rank) && s.event_time.max(floor) + a.delay == at))
        }
    }
}

/// The decisions an event (already in the view) adds to the derivation, sorted.
pub fn new_decisions(view: &View, event: &Event, plan: &Plan) -> Vec<Decision> {
    let source = event.source;
    let rank = source.rank_of(&event.kind).unwrap_or(-1);
    let no: &[usize] = &[];
    let triggered: &[usize] = usize::try_from(rank).ok()
        .and_then(|r| plan.on[slot(source)].get(r)).map_or(no, |v| v);
    let anchored: &[usize] = if source == Source::Orders {
        usize::try_from(rank).ok().and_then(|r| plan.anchored.get(r)).map_or(no, |v| v)
    } else {
        no
    };
    if triggered.is_empty() && anchored.is_empty() {
        return Vec::new();
    }
    let eid = event.step.event_id.as_str();
    let t = event.step.event_time;
    let entity: &str = if source == Source::Orders { view.order_id } else { &event.entity_id };
    let rest: Vec<&Step> = view.log(source, entity).iter().filter(|s| s.event_id != eid).collect();
    let mut found: Vec<Decision> = Vec::new();
    let mut push = |due: i64, rule: i64, key: &str| {
        found.push(Decision { due, rule, key: key.to_string() })
    };
    for &i in triggered {
        let a = &plan.armed[i];
        if a.first {
            let first = first_by_trigger(view.log(source, entity).iter().filter(|s| a.takes(s.rank)));
            if first.is_some_and(|f| f.event_id == eid) {
                let previous = first_by_trigger(rest.iter().copied().filter(|s| a.takes(s.rank)));
                if previous.is_none_or(|p| p.event_time != t) {
                    push(t + a.delay, a.rule, entity);
                }
            }
        } else if let Some(after) = a.after {
            if let Some(floor) = anchor(view, after, FOREVER).map(|p| p.event_time) {
                let due = t.max(floor) + a.delay;
                if !rest.iter().any(|s| a.takes(s.rank) && s.event_time.max(floor) + a.delay == due) {
                    push(due, a.rule, entity);
                }
            }
        } else if !rest.iter().any(|s| s.event_time == t && a.takes(s.rank)) {
            push(t + a.delay, a.rule, entity);
        }
    }
    for &i in anchored {
        let a = &plan.armed[i];
        if !anchor(view, rank, FOREVER).is_some_and(|p| p.event_id == eid) {
            continue; // not the order's first of its type: no D moved
        }
        let previous = first_by_trigger(rest.iter().copied().filter(|s| s.rank == rank));
        for other in view.entity_ids(a.source) {
            let steps: Vec<&Step> = view.log(a.source, other).iter().filter(|s| a.takes(s.rank)).collect();
            let mut dues: Vec<i64> = steps.iter().map(|s| s.event_time.max(t) + a.delay).collect();
            dues.sort_unstable();
            dues.dedup();
            for due in dues {
                let new = previous.is_none_or(|p| {
                    steps.iter().all(|s| s.event_time.max(p.event_time) + a.delay != due)
                });
                if new {
                    push(due, a.rule, other);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod tests;
