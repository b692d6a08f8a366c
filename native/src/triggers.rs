//! Decisions and their trigger events (`streams.rules.triggers`).

use crate::model::{
    active_reservation, Decision, Event, Rules, Source, Step, CONFIRMED, CREATED, DISPATCHED,
    FOREVER, PLACED, REFUNDED, RELEASED, RESERVED, SUCCEEDED,
};
use crate::view::{first_by_trigger, View};

/// The decisions with low < due <= high (low None: no bound), sorted and distinct.
pub fn due_between(view: &View, rules: &Rules, low: Option<i64>, high: i64) -> Vec<Decision> {
    let low = low.unwrap_or(-FOREVER);
    let mut found: Vec<Decision> = Vec::new();
    let mut add = |due: i64, rule: i64, key: &str| {
        if low < due && due <= high {
            found.push(Decision { due, rule, key: key.to_string() });
        }
    };
    for (reservation, log) in &view.logs.reservations {
        let mut first: Option<&Step> = None;
        for s in log {
            let t = s.event_time;
            if s.rank == RELEASED {
                add(t + rules.tcc_grace, 9, reservation);
                continue;
            }
            if first.map_or(true, |f| s.trigger_key() < f.trigger_key()) {
                first = Some(s);
            }
            if s.rank == CONFIRMED {
                add(t + rules.shipment_timeout, 3, reservation);
            } else if s.rank == RESERVED {
                add(t, 10, reservation);
            }
        }
        if let Some(f) = first {
            add(f.event_time + rules.payment_timeout, 1, reservation);
        }
    }
    let mut placed: Option<Option<&Step>> = None;
    for (payment, log) in &view.logs.payments {
        for s in log {
            let t = s.event_time;
            if s.rank == SUCCEEDED {
                add(t + rules.reservation_timeout, 2, payment);
                add(t, 5, payment);
                let p = *placed.get_or_insert_with(|| view.placed(FOREVER));
                if let Some(p) = p {
                    add(t.max(p.event_time), 6, payment);
                }
            } else if s.rank == REFUNDED {
                add(t + rules.release_timeout, 8, payment);
            }
        }
    }
    for (shipment, log) in &view.logs.shipments {
        for s in log {
            if s.rank == CREATED || s.rank == DISPATCHED {
                add(s.event_time + rules.payment_grace, 4, shipment);
                if s.rank == CREATED {
                    add(s.event_time + rules.tcc_grace, 7, shipment);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn triggered_by(rule: i64) -> (Source, fn(i64) -> bool) {
    match rule {
        2 | 5 | 6 => (Source::Payments, |r| r == SUCCEEDED),
        3 => (Source::Inventory, |r| r == CONFIRMED),
        4 => (Source::Shipping, |r| r == CREATED || r == DISPATCHED),
        7 => (Source::Shipping, |r| r == CREATED),
        8 => (Source::Payments, |r| r == REFUNDED),
        9 => (Source::Inventory, |r| r == RELEASED),
        _ => (Source::Inventory, |r| r == RESERVED), // 10
    }
}

fn delay(rule: i64, rules: &Rules) -> i64 {
    match rule {
        2 => rules.reservation_timeout,
        3 => rules.shipment_timeout,
        4 => rules.payment_grace,
        7 | 9 => rules.tcc_grace,
        8 => rules.release_timeout,
        _ => 0,
    }
}

/// The trigger of a decision as of its time D; None if the events up to D do not call for it.
pub fn trigger_of<'a>(view: &View<'a>, rules: &Rules, d: &Decision) -> Option<&'a Step> {
    let at = d.due;
    if d.rule == 1 {
        let first = view.first(Source::Inventory, &d.key, active_reservation, at)?;
        return (first.event_time + rules.payment_timeout == at).then_some(first);
    }
    let (source, want) = triggered_by(d.rule);
    let history = view.history(source, &d.key, at);
    if d.rule == 6 {
        let floor = view.placed(at)?.event_time;
        first_by_trigger(history.iter().filter(|s| want(s.rank) && s.event_time.max(floor) == at))
    } else {
        let delay = delay(d.rule, rules);
        first_by_trigger(history.iter().filter(|s| want(s.rank) && s.event_time + delay == at))
    }
}

fn same_time(others: &[&Step], want: fn(i64) -> bool, t: i64) -> bool {
    others.iter().any(|s| s.event_time == t && want(s.rank))
}

/// The decisions an event (already in the view) adds to the derivation, sorted.
pub fn new_decisions(view: &View, event: &Event, rules: &Rules) -> Vec<Decision> {
    let eid = event.step.event_id.as_str();
    let t = event.step.event_time;
    let source = event.source;
    let entity: &str = if source == Source::Orders { view.order_id } else { &event.entity_id };
    let rest: Vec<&Step> = view.log(source, entity).iter().filter(|s| s.event_id != eid).collect();
    let rank = source.rank_of(&event.kind).unwrap_or(-1);
    let mut found: Vec<Decision> = Vec::new();
    let mut push = |due: i64, rule: i64, key: &str| {
        found.push(Decision { due, rule, key: key.to_string() })
    };
    match source {
        Source::Payments => {
            if rank == SUCCEEDED {
                if !same_time(&rest, |r| r == SUCCEEDED, t) {
                    push(t + rules.reservation_timeout, 2, entity);
                    push(t, 5, entity);
                }
                if let Some(placed) = view.placed(FOREVER) {
                    let floor = placed.event_time;
                    let due = t.max(floor);
                    if !rest.iter().any(|s| s.rank == SUCCEEDED && s.event_time.max(floor) == due) {
                        push(due, 6, entity);
                    }
                }
            } else if rank == REFUNDED && !same_time(&rest, |r| r == REFUNDED, t) {
                push(t + rules.release_timeout, 8, entity);
            }
        }
        Source::Inventory => {
            if active_reservation(rank) {
                if let Some(first) = view.first(Source::Inventory, entity, active_reservation, FOREVER) {
                    if first.event_id == eid {
                        let previous =
                            first_by_trigger(rest.iter().copied().filter(|s| active_reservation(s.rank)));
                        if previous.map_or(true, |p| p.event_time != t) {
                            push(t + rules.payment_timeout, 1, entity);
                        }
                    }
                }
            }
            if rank == CONFIRMED && !same_time(&rest, |r| r == CONFIRMED, t) {
                push(t + rules.shipment_timeout, 3, entity);
            } else if rank == RELEASED && !same_time(&rest, |r| r == RELEASED, t) {
                push(t + rules.tcc_grace, 9, entity);
            } else if rank == RESERVED && !same_time(&rest, |r| r == RESERVED, t) {
                push(t, 10, entity);
            }
        }
        Source::Shipping => {
            if rank == CREATED || rank == DISPATCHED {
                if !same_time(&rest, |r| r == CREATED || r == DISPATCHED, t) {
                    push(t + rules.payment_grace, 4, entity);
                }
                if rank == CREATED && !same_time(&rest, |r| r == CREATED, t) {
                    push(t + rules.tcc_grace, 7, entity);
                }
            }
        }
        Source::Orders => {
            if rank == PLACED {
                if let Some(placed) = view.placed(FOREVER) {
                    if placed.event_id == eid {
                        let previous =
                            first_by_trigger(rest.iter().copied().filter(|s| s.rank == PLACED));
                        for payment in view.entity_ids(Source::Payments) {
                            let paid: Vec<&Step> = view.log(Source::Payments, payment).iter()
                                .filter(|s| s.rank == SUCCEEDED).collect();
                            let mut dues: Vec<i64> = paid.iter().map(|s| s.event_time.max(t)).collect();
                            dues.sort_unstable();
                            dues.dedup();
                            for due in dues {
                                let new = match previous {
                                    None => true,
                                    Some(p) => paid.iter().all(|s| s.event_time.max(p.event_time) != due),
                                };
                                if new {
                                    push(due, 6, payment);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}
