//! The rules of the order's own status (11-15, `streams/rules/order_status.py`): a payment
//! the order never applied, and a cancelled order that is still charged, reserved or
//! shipped, or marked paid with no money. `table::RULES` lists them. A cancellation (a PAID)
//! is for good: the order is CANCELLED at `at` when it has a CANCELLED event at or before it.

use crate::ids::iso;
use crate::model::{
    active_payment, active_reservation, on_its_way, put, Ordered, Source, Step,
};
use crate::spec::{Facts, Rule, Trigger};
use crate::table::{
    active_reservations, payment_facts, reservation_facts, HOLD_SHIPMENT, MARK_ORDER_PAID,
    REFUND_PAYMENT, RELEASE_STOCK,
};
use crate::view::View;

use Source::{Inventory as INV, Orders as ORD, Payments as PAY, Shipping as SHIP};

fn cancelled_at(view: &View, at: i64, details: &mut Ordered<String>) {
    if let Some(c) = view.cancelled(at) {
        put(details, "cancelled_at", iso(c.event_time));
    }
}

// -- 11 PAYMENT_NOT_APPLIED (the payment callback was lost) -----------------------------------

fn not_applied(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_payment(view.rank(PAY, subject, at))
        && view.paid(at).is_none()
        && view.cancelled(at).is_none()
}

fn unapplied<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    (vec![view.latest(PAY, subject, at), view.placed(at)], payment_facts(key, trigger))
}

pub(crate) const PAYMENT_NOT_APPLIED: Rule = Rule {
    number: 11, kind: "PAYMENT_NOT_APPLIED", severity: "HIGH",
    command: Some(MARK_ORDER_PAID), reads: &[PAY, ORD],
    trigger: Trigger { source: PAY, types: &["SUCCEEDED"], delay: Some("callback_timeout"),
                       first: false, after: Some("PLACED") },
    holds: not_applied, fires: None, facts: unapplied, subjects: None, resolvable: true,
};

// -- 12 CANCELLED_BUT_CHARGED -----------------------------------------------------------------

fn charged(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_payment(view.rank(PAY, subject, at)) && view.cancelled(at).is_some()
}

fn charged_facts<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let mut details = payment_facts(key, trigger);
    cancelled_at(view, at, &mut details);
    (vec![view.latest(PAY, subject, at), view.cancelled(at)], details)
}

pub(crate) const CANCELLED_BUT_CHARGED: Rule = Rule {
    number: 12, kind: "CANCELLED_BUT_CHARGED", severity: "CRITICAL",
    command: Some(REFUND_PAYMENT), reads: &[ORD, PAY],
    trigger: Trigger { source: PAY, types: &["SUCCEEDED"], delay: Some("release_timeout"),
                       first: false, after: Some("CANCELLED") },
    holds: charged, fires: None, facts: charged_facts, subjects: None, resolvable: true,
};

// -- 13 CANCELLED_BUT_RESERVED (key: the order; subjects: the active reservations) ------------

fn kept_after_cancel(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_reservation(view.rank(INV, subject, at)) && view.cancelled(at).is_some()
}

fn reserved_facts<'a>(subject: &str, _key: &str, _t: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let mut details = reservation_facts(view, subject, at);
    cancelled_at(view, at, &mut details);
    (vec![view.latest(INV, subject, at)], details)
}

pub(crate) const CANCELLED_BUT_RESERVED: Rule = Rule {
    number: 13, kind: "CANCELLED_BUT_RESERVED", severity: "MEDIUM",
    command: Some(RELEASE_STOCK), reads: &[ORD, INV],
    trigger: Trigger { source: ORD, types: &["CANCELLED"], delay: Some("release_timeout"),
                       first: true, after: None },
    holds: kept_after_cancel, fires: None, facts: reserved_facts,
    subjects: Some(active_reservations), resolvable: true,
};

// -- 14 CANCELLED_BUT_SHIPPED -----------------------------------------------------------------

fn shipped_after_cancel(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    on_its_way(view.rank(SHIP, subject, at)) && view.cancelled(at).is_some()
}

fn shipped_facts<'a>(subject: &str, _key: &str, _t: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let mut details = vec![
        ("shipment_id".to_string(), subject.to_string()),
        ("shipment_state".to_string(), view.state_name(SHIP, subject, at)),
    ];
    cancelled_at(view, at, &mut details);
    (vec![view.latest(SHIP, subject, at), view.cancelled(at)], details)
}

pub(crate) const CANCELLED_BUT_SHIPPED: Rule = Rule {
    number: 14, kind: "CANCELLED_BUT_SHIPPED", severity: "HIGH",
    command: Some(HOLD_SHIPMENT), reads: &[ORD, SHIP],
    trigger: Trigger { source: SHIP, types: &["CREATED", "DISPATCHED"],
                       delay: Some("payment_grace"), first: false, after: Some("CANCELLED") },
    holds: shipped_after_cancel, fires: None, facts: shipped_facts, subjects: None,
    resolvable: true,
};

// -- 15 PAID_WITHOUT_PAYMENT (subject: the order) ---------------------------------------------

fn paid_for_nothing(_subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    // a cancelled order is no longer claimed paid (its payment is refunded as it should be)
    view.paid(at).is_some() && view.cancelled(at).is_none() && view.active_payments(at).is_empty()
}

fn paid_facts<'a>(_subject: &str, _key: &str, trigger: &Step, _view: &View<'a>, _at: i64)
    -> Facts<'a> {
    (vec![], vec![("paid_at".to_string(), iso(trigger.event_time))])
}

pub(crate) const PAID_WITHOUT_PAYMENT: Rule = Rule {
    number: 15, kind: "PAID_WITHOUT_PAYMENT", severity: "CRITICAL", command: None,
    reads: &[ORD, PAY],
    trigger: Trigger { source: ORD, types: &["PAID"], delay: Some("payment_grace"),
                       first: true, after: None },
    holds: paid_for_nothing, fires: None, facts: paid_facts, subjects: None, resolvable: true,
};
