//! Read-only queries over one order's entity logs as of an event time (`streams.rules.entities`).

use crate::model::{
    active_payment, active_reservation, live_shipment, shipped, Event, Logs, Ordered, Source,
    Step, CREATED, SUCCEEDED,
};

const NO_STEPS: &[Step] = &[];

/// Put a step into an entity's log at its place in lifecycle order.
pub fn insert_step(log: &mut Vec<Step>, step: Step) {
    let mut at = log.len();
    while at > 0 && log[at - 1].lifecycle_key() > step.lifecycle_key() {
        at -= 1;
    }
    log.insert(at, step);
}

/// Put an event, as a step, into its entity's log (created if new) of an order's logs.
pub fn place(logs: &mut Logs, event: &Event) {
    let step = event.step.clone();
    let entities = match event.source {
        Source::Orders => {
            insert_step(&mut logs.orders, step);
            return;
        }
        Source::Payments => &mut logs.payments,
        Source::Inventory => &mut logs.reservations,
        Source::Shipping => &mut logs.shipments,
    };
    match crate::model::get_mut(entities, &event.entity_id) {
        Some(log) => insert_step(log, step),
        None => entities.push((event.entity_id.clone(), vec![step])),
    }
}

/// The first of `steps` by (event_time, event_id); the first of equals (Python's `min`).
pub fn first_by_trigger<'a, I: Iterator<Item = &'a Step>>(steps: I) -> Option<&'a Step> {
    let mut best: Option<&Step> = None;
    for s in steps {
        if best.map_or(true, |b| s.trigger_key() < b.trigger_key()) {
            best = Some(s);
        }
    }
    best
}

pub struct View<'a> {
    pub order_id: &'a str,
    pub logs: &'a Logs,
}

impl<'a> View<'a> {
    pub fn new(order_id: &'a str, logs: &'a Logs) -> Self {
        View { order_id, logs }
    }

    pub fn entities(&self, source: Source) -> &'a Ordered<Vec<Step>> {
        match source {
            Source::Payments => &self.logs.payments,
            Source::Inventory => &self.logs.reservations,
            Source::Shipping => &self.logs.shipments,
            Source::Orders => unreachable!("the order's own log has no entity map"),
        }
    }

    /// (entity id, log) of every entity of a source: the order's own log under its order_id
    /// (none while it is empty), as `OrderView.entities`.
    pub fn entity_logs(&self, source: Source) -> impl Iterator<Item = (&'a str, &'a [Step])> + 'a {
        let logs = self.logs;
        let own = (source == Source::Orders && !logs.orders.is_empty())
            .then_some((self.order_id, logs.orders.as_slice()));
        let map: &'a [(String, Vec<Step>)] = match source {
            Source::Orders => &[],
            other => self.entities(other),
        };
        own.into_iter().chain(map.iter().map(|(k, l)| (k.as_str(), l.as_slice())))
    }

    /// The entity's whole log, in lifecycle order.
    pub fn log(&self, source: Source, entity_id: &str) -> &'a [Step] {
        if source == Source::Orders {
            return if entity_id == self.order_id { &self.logs.orders } else { NO_STEPS };
        }
        for (id, log) in self.entities(source) {
            if id == entity_id {
                return log;
            }
        }
        NO_STEPS
    }

    /// The entity's steps with event_time <= at (a prefix of its log).
    pub fn history(&self, source: Source, entity_id: &str, at: i64) -> &'a [Step] {
        let log = self.log(source, entity_id);
        let mut n = log.len();
        while n > 0 && log[n - 1].event_time > at {
            n -= 1;
        }
        &log[..n]
    }

    pub fn latest(&self, source: Source, entity_id: &str, at: i64) -> Option<&'a Step> {
        self.history(source, entity_id, at).last()
    }

    /// The rank of the entity's state at `at`, -1 when it has no event yet.
    pub fn rank(&self, source: Source, entity_id: &str, at: i64) -> i64 {
        self.latest(source, entity_id, at).map_or(-1, |s| s.rank)
    }

    /// The entity's state as its type name ("None" when it has no event: Python's str(None)).
    pub fn state_name(&self, source: Source, entity_id: &str, at: i64) -> String {
        match self.latest(source, entity_id, at) {
            Some(s) => source.lifecycle()[s.rank as usize].to_string(),
            None => "None".to_string(),
        }
    }

    /// The entity's first step whose rank passes `want`, by (event_time, event_id), up to `at`.
    pub fn first(&self, source: Source, entity_id: &str, want: fn(i64) -> bool, at: i64)
        -> Option<&'a Step> {
        first_by_trigger(self.history(source, entity_id, at).iter().filter(|s| want(s.rank)))
    }

    /// Every entity of a source the order has seen, sorted.
    pub fn entity_ids(&self, source: Source) -> Vec<&'a str> {
        let mut ids: Vec<&str> = self.entities(source).iter().map(|(k, _)| k.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    fn in_state(&self, source: Source, want: fn(i64) -> bool, at: i64) -> Vec<&'a str> {
        let mut ids: Vec<&str> = self
            .entities(source)
            .iter()
            .filter(|(_, log)| {
                let n = log.iter().rposition(|s| s.event_time <= at);
                n.map_or(false, |i| want(log[i].rank))
            })
            .map(|(k, _)| k.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn active_payments(&self, at: i64) -> Vec<&'a str> {
        self.in_state(Source::Payments, active_payment, at)
    }
    pub fn active_reservations(&self, at: i64) -> Vec<&'a str> {
        self.in_state(Source::Inventory, active_reservation, at)
    }
    pub fn live_shipments(&self, at: i64) -> Vec<&'a str> {
        self.in_state(Source::Shipping, live_shipment, at)
    }
    pub fn shipped(&self, at: i64) -> Vec<&'a str> {
        self.in_state(Source::Shipping, shipped, at)
    }

    pub fn any_succeeded(&self, at: i64) -> bool {
        self.logs.payments.iter().any(|(_, log)| {
            log.iter().take_while(|s| s.event_time <= at).any(|s| s.rank == SUCCEEDED)
        })
    }

    pub fn placed(&self, at: i64) -> Option<&'a Step> {
        let id = self.order_id;
        self.first(Source::Orders, id, |r| r == crate::model::PLACED, at)
    }

    /// The order's first CANCELLED event up to `at` (a cancellation is for good).
    pub fn cancelled(&self, at: i64) -> Option<&'a Step> {
        let id = self.order_id;
        self.first(Source::Orders, id, |r| r == crate::model::ORDER_CANCELLED, at)
    }

    /// The order's first PAID event up to `at`.
    pub fn paid(&self, at: i64) -> Option<&'a Step> {
        let id = self.order_id;
        self.first(Source::Orders, id, |r| r == crate::model::ORDER_PAID, at)
    }

    pub fn reservation_line(&self, reservation: &str, at: i64) -> Option<(&'a str, i64)> {
        let s = self.latest(Source::Inventory, reservation, at)?;
        let sku = s.sku.as_deref()?;
        Some((sku, s.quantity.unwrap_or(0)))
    }

    /// sku -> quantity of a shipment's latest CREATED as of `at`, in item order.
    pub fn shipment_items(&self, shipment: &str, at: i64) -> Vec<(&'a str, i64)> {
        let mut items: Vec<(&str, i64)> = Vec::new();
        let created = self.history(Source::Shipping, shipment, at).iter().rev()
            .find(|s| s.rank == CREATED);
        if let Some(c) = created {
            for item in &c.items {
                match items.iter_mut().find(|(k, _)| *k == item.sku) {
                    Some(slot) => slot.1 += item.quantity,
                    None => items.push((&item.sku, item.quantity)),
                }
            }
        }
        items
    }

    fn add(totals: &mut Vec<(&'a str, i64)>, sku: &'a str, quantity: i64) {
        match totals.iter_mut().find(|(k, _)| *k == sku) {
            Some(slot) => slot.1 += quantity,
            None => totals.push((sku, quantity)),
        }
    }

    pub fn reserved_by_sku(&self, at: i64) -> Vec<(&'a str, i64)> {
        let mut totals = Vec::new();
        for r in self.active_reservations(at) {
            if let Some((sku, q)) = self.reservation_line(r, at) {
                Self::add(&mut totals, sku, q);
            }
        }
        totals
    }

    pub fn shipped_by_sku(&self, at: i64) -> Vec<(&'a str, i64)> {
        let mut totals = Vec::new();
        for s in self.live_shipments(at) {
            for (sku, q) in self.shipment_items(s, at) {
                Self::add(&mut totals, sku, q);
            }
        }
        totals
    }

    /// (sku, shipped, reserved) of the first sku (sorted) shipped beyond its reservations.
    pub fn overshipped(&self, at: i64) -> Option<(&'a str, i64, i64)> {
        let reserved = self.reserved_by_sku(at);
        let mut shipped = self.shipped_by_sku(at);
        shipped.sort();
        for (sku, q) in shipped {
            let r = reserved.iter().find(|(k, _)| *k == sku).map_or(0, |(_, v)| *v);
            if q > r {
                return Some((sku, q, r));
            }
        }
        None
    }

    /// Another payment active at `at` whose first SUCCEEDED is before `since` (or at `since`
    /// with a smaller id): the earliest such, by (time, id).
    pub fn earlier_payment(&self, payment: &str, since: i64, at: i64) -> Option<&'a str> {
        let mut best: Option<(i64, &str)> = None;
        for other in self.active_payments(at) {
            let first = self.first(Source::Payments, other, active_payment, at);
            let Some(first) = first else { continue };
            if other == payment {
                continue;
            }
            let key = (first.event_time, other);
            if key < (since, payment) && best.map_or(true, |b| key < b) {
                best = Some(key);
            }
        }
        best.map(|b| b.1)
    }

    fn all_steps(&self) -> impl Iterator<Item = &'a Step> {
        let logs = self.logs;
        logs.orders.iter()
            .chain(logs.payments.iter().flat_map(|(_, l)| l.iter()))
            .chain(logs.reservations.iter().flat_map(|(_, l)| l.iter()))
            .chain(logs.shipments.iter().flat_map(|(_, l)| l.iter()))
    }

    pub fn has_event(&self, event_id: &str) -> bool {
        self.all_steps().any(|s| s.event_id == event_id)
    }

    pub fn event_times(&self) -> Vec<i64> {
        let mut times: Vec<i64> = self.all_steps().map(|s| s.event_time).collect();
        times.sort_unstable();
        times.dedup();
        times
    }

    pub fn event_times_between(&self, low: Option<i64>, high: i64) -> Vec<i64> {
        let floor = low.unwrap_or(-crate::model::FOREVER);
        let mut times: Vec<i64> = self
            .all_steps()
            .map(|s| s.event_time)
            .filter(|t| floor < *t && *t <= high)
            .collect();
        times.sort_unstable();
        times.dedup();
        times
    }

    pub fn first_event_at(&self, at: i64) -> Option<&'a Step> {
        let mut best: Option<&Step> = None;
        for s in self.all_steps() {
            if s.event_time == at && best.map_or(true, |b| s.event_id < b.event_id) {
                best = Some(s);
            }
        }
        best
    }
}
