//! The rule table's consistency, and the derivation of decisions from triggers of every
//! shape the table can express, against the definition (as `tests/unit/test_rules_table.py`).

use std::collections::BTreeMap;

use super::*;
use crate::catalog::{decide, fires};
use crate::model::{Event, Logs, Step};
use crate::spec::Trigger;
use crate::table::RULES;
use crate::view::{place, View};
use Source::{Inventory as I, Orders as O, Payments as P, Shipping as S};

fn rules() -> Rules {
    Rules { allowed_lateness: 1, state_retention: 0, settings: vec![
        ("payment_timeout", 40), ("reservation_timeout", 20), ("shipment_timeout", 60),
        ("payment_grace", 10), ("release_timeout", 30), ("tcc_grace", 5),
        ("callback_timeout", 50)], own: Vec::new() }
}

#[test]
fn the_table_is_consistent() {
    let mut kinds: Vec<&str> = Vec::new();
    for (i, r) in RULES.iter().enumerate() {
        assert_eq!(r.number, i as i64 + 1);
        assert!(!kinds.contains(&r.kind), "{} twice", r.kind);
        kinds.push(r.kind);
        assert!(r.reads.contains(&r.trigger.source) || r.trigger.source == O, "{}", r.kind);
        assert!(r.trigger.after.is_none() || r.reads.contains(&O), "{}", r.kind);
        assert!(["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&r.severity));
    }
    let plan = Plan::new(rules(), None).expect("every type and setting exists");
    let names = |n: i64| -> Vec<&str> { plan.decided_on(n).iter().map(|s| s.name()).collect() };
    // docs/time.md's table of the rules' watermarks
    assert_eq!(names(1), ["orders", "payments", "inventory", "shipping"]);
    assert_eq!(names(2), ["orders", "payments", "inventory"]);
    assert_eq!(names(5), ["orders", "payments", "inventory"]);
    assert_eq!(names(6), ["orders", "payments"]);
    assert_eq!(names(9), ["inventory"]);
    assert_eq!(names(10), ["orders", "payments", "inventory", "shipping"]);
    assert_eq!(names(11), ["orders", "payments"]);
    assert_eq!(names(15), ["orders", "payments"]);
    for r in &RULES {
        assert!(r.reads.iter().all(|s| plan.decided_on(r.number).contains(s)));
    }
}

#[test]
fn a_plan_names_what_does_not_exist() {
    let mut short = rules();
    short.settings.retain(|(n, _)| *n != "tcc_grace");
    assert!(Plan::new(short, None).unwrap_err().contains("tcc_grace"));
    let typo = Trigger { source: P, types: &["SUCCEEDED", "PAID"], delay: None, first: false,
                         after: None };
    assert!(Plan::of(rules(), &[(1, &typo)]).unwrap_err().contains("PAID"));
    let both = Trigger { source: I, types: &["RESERVED"], delay: None, first: true,
                         after: Some("PLACED") };
    assert!(Plan::of(rules(), &[(1, &both)]).is_err());
}

fn step(event_time: i64, rank: i64, event_id: &str) -> Step {
    let mut s = Step::new(event_time, rank, event_id.to_string());
    s.amount = Some(100);
    s.currency = Some("CNY".into());
    s.total_amount = Some(100);
    s
}

fn event(source: Source, entity: &str, kind: &str, t: i64, eid: &str) -> Event {
    let rank = source.rank_of(kind).expect("a type of its source");
    Event { source, entity_id: entity.into(), kind: kind.into(), step: step(t, rank, eid) }
}

fn logs_of(events: &[Event]) -> Logs {
    let mut logs = Logs::default();
    for e in events {
        place(&mut logs, e);
    }
    logs
}

#[test]
fn a_rule_not_in_force_calls_for_no_decision() {
    let logs = logs_of(&[event(P, "p1", "SUCCEEDED", 100, "e1"), event(P, "p2", "SUCCEEDED", 100, "e2")]);
    let view = View::new("o", &logs);
    let every = Plan::new(rules(), None).unwrap();
    let without = Plan::new(rules(), Some(&[1, 2, 3, 4, 6, 7, 8, 9, 10])).unwrap();
    let duplicate = Decision { due: 100, rule: 5, key: "p2".into() };
    assert!(due_between(&view, &every, None, FOREVER).contains(&duplicate));
    assert!(fires(&duplicate, &view, &every));
    assert_eq!(decide(&duplicate, &view, &every)[0].command.as_ref().map(|c| c.kind),
               Some("REFUND_PAYMENT"));
    assert!(!due_between(&view, &without, None, FOREVER).iter().any(|d| d.rule == 5));
    assert!(trigger_of(&view, &without, &duplicate).is_none());
}

/// Triggers shaped like the contract's order-status rules, numbered after the table's.
const SHAPES: [Trigger; 5] = [
    Trigger { source: P, types: &["SUCCEEDED"], delay: Some("release_timeout"), first: false,
              after: Some("CANCELLED") },
    Trigger { source: O, types: &["CANCELLED"], delay: Some("release_timeout"), first: false,
              after: None },
    Trigger { source: S, types: &["CREATED", "DISPATCHED"], delay: Some("payment_grace"),
              first: false, after: Some("CANCELLED") },
    Trigger { source: P, types: &["SUCCEEDED"], delay: Some("payment_grace"), first: false,
              after: Some("PLACED") },
    Trigger { source: O, types: &["PLACED"], delay: Some("tcc_grace"), first: true, after: None },
];

fn shaped() -> Vec<(i64, &'static Trigger)> {
    RULES.iter().map(|r| (r.number, &r.trigger))
        .chain(SHAPES.iter().enumerate().map(|(i, t)| (RULES.len() as i64 + 1 + i as i64, t)))
        .collect()
}

/// Every decision with D <= at, from the Trigger definitions, with its trigger's event_id.
fn by_definition(view: &View, triggers: &[(i64, &Trigger)], at: i64) -> BTreeMap<Decision, String> {
    let mut found: BTreeMap<Decision, (i64, String)> = BTreeMap::new();
    let all = rules();
    for &(number, t) in triggers {
        let delay = t.delay.map_or(0, |n| all.setting(n).unwrap());
        let anchor = match t.after {
            None => None,
            Some(kind) => {
                let rank = O.rank_of(kind).unwrap();
                match view.log(O, view.order_id).iter().filter(|s| s.rank == rank)
                    .min_by_key(|s| s.trigger_key()) {
                    None => continue,
                    Some(a) => Some(a.event_time),
                }
            }
        };
        let ids: Vec<&str> = if t.source == O {
            if view.log(O, view.order_id).is_empty() { vec![] } else { vec![view.order_id] }
        } else {
            view.entity_ids(t.source)
        };
        for entity in ids {
            let mut steps: Vec<&Step> = view.log(t.source, entity).iter()
                .filter(|s| t.types.contains(&t.source.lifecycle()[s.rank as usize])).collect();
            if t.first {
                steps = steps.into_iter().min_by_key(|s| s.trigger_key()).into_iter().collect();
            }
            for s in steps {
                let due = anchor.map_or(s.event_time, |a| s.event_time.max(a)) + delay;
                if due > at {
                    continue;
                }
                let d = Decision { due, rule: number, key: entity.to_string() };
                let candidate = (s.event_time, s.event_id.clone());
                let better = found.get(&d).is_none_or(|c| candidate < *c);
                if better {
                    found.insert(d, candidate);
                }
            }
        }
    }
    found.into_iter().map(|(d, (_, id))| (d, id)).collect()
}

/// xorshift64*: the same orders on every run.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
}

/// One order's events: few entities, coarse times (many ties), repeated ids dropped.
fn order(random: &mut Random) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for n in 0..random.below(11) {
        let source = Source::ALL[random.below(4) as usize];
        let kinds = source.lifecycle();
        let kind = kinds[random.below(kinds.len() as u64) as usize];
        let t = random.below(13) as i64 * 5;
        let entity = if source == O { "o" } else { ["a", "b"][random.below(2) as usize] };
        let eid = format!("e{}", random.below(n + 1));
        if !events.iter().any(|e| e.step.event_id == eid) {
            events.push(event(source, entity, kind, t, &eid));
        }
    }
    events
}

#[test]
fn every_trigger_shape_derives_as_defined() {
    let triggers = shaped();
    let plan = Plan::of(rules(), &triggers).expect("every shape is allowed");
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let mut seen = [0usize; 32]; // decisions added by an arriving event, by rule
    for _ in 0..3000 {
        let events = order(&mut random);
        let logs = logs_of(&events);
        let view = View::new("o", &logs);
        let every = by_definition(&view, &triggers, FOREVER);
        let at = random.below(131) as i64;
        let low = random.below(140) as i64 - 10;
        let expected: Vec<Decision> = every.keys().filter(|d| low < d.due && d.due <= at)
            .cloned().collect();
        assert_eq!(due_between(&view, &plan, Some(low), at), expected);
        for d in every.keys() {
            for due in [d.due - 5, d.due, d.due + 5] {
                let other = Decision { due, ..d.clone() };
                let found = trigger_of(&view, &plan, &other).map(|s| s.event_id.clone());
                assert_eq!(found, by_definition(&view, &triggers, due).get(&other).cloned(),
                           "{other:?} of {events:?}");
            }
        }
        if !events.is_empty() {
            let last = random.below(events.len() as u64) as usize;
            let mut history = events.clone();
            let arriving = history.remove(last);
            let before_logs = logs_of(&history);
            let before = by_definition(&View::new("o", &before_logs), &triggers, FOREVER);
            let added: Vec<Decision> = every.keys().filter(|d| !before.contains_key(d)).cloned()
                .collect();
            assert_eq!(new_decisions(&view, &arriving, &plan), added, "{arriving:?} after {history:?}");
            for d in added {
                seen[d.rule as usize] += 1;
            }
        }
    }
    let shapes = triggers.len() + 1;
    assert!(seen[1..shapes].iter().all(|n| *n > 20),
            "every rule and shape was exercised: {seen:?}");
}
