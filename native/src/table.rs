//! The rule table (`streams/rules/table.py`): each rule of the contract's section 4 defined
//! once, in one block: its conditions and facts over a `View`, and its `Rule` entry. `RULES`
//! lists them in the contract's order; the decisions, findings and rule watermarks derive
//! from it (`triggers.rs`, `catalog.rs`). docs/rules.md says how to add a rule.
//!
//! Conditions take (subject, key, trigger_time, view, at); facts and commands take (subject,
//! key, trigger event, view, at), as in the Python table.

use crate::ids::iso;
use crate::model::{
    active_payment, active_reservation, live_shipment, put, Ordered, Source, Step, RELEASED,
};
use crate::spec::{CommandKind, CommandSpec, Facts, Rule, Trigger};
use crate::status::{
    CANCELLED_BUT_CHARGED, CANCELLED_BUT_RESERVED, CANCELLED_BUT_SHIPPED, PAID_WITHOUT_PAYMENT,
    PAYMENT_NOT_APPLIED,
};
use crate::view::View;

use Source::{Inventory as INV, Orders as ORD, Payments as PAY, Shipping as SHIP};

// -- shared facts and commands ---------------------------------------------------------------

pub(crate) fn opt_int(v: Option<i64>) -> String {
    v.map_or_else(|| "None".to_string(), |v| v.to_string())
}

pub(crate) fn opt_str(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "None".to_string())
}

pub(crate) fn reservation_facts(view: &View, reservation: &str, at: i64) -> Ordered<String> {
    let mut facts = vec![("reservation_id".to_string(), reservation.to_string())];
    if let Some((sku, q)) = view.reservation_line(reservation, at) {
        put(&mut facts, "sku", sku.to_string());
        put(&mut facts, "quantity", q.to_string());
    }
    facts
}

pub(crate) fn payment_facts(payment: &str, trigger: &Step) -> Ordered<String> {
    vec![
        ("payment_id".to_string(), payment.to_string()),
        ("amount".to_string(), opt_int(trigger.amount)),
        ("currency".to_string(), opt_str(&trigger.currency)),
    ]
}

fn release(subject: &str, _key: &str, _trigger: &Step, view: &View, at: i64) -> CommandSpec {
    let mut c = CommandSpec::new("RELEASE_STOCK", subject);
    if let Some((sku, q)) = view.reservation_line(subject, at) {
        c.sku = Some(sku.to_string());
        c.quantity = Some(q);
    }
    c
}

fn refund(_subject: &str, key: &str, trigger: &Step, _view: &View, _at: i64) -> CommandSpec {
    let mut c = CommandSpec::new("REFUND_PAYMENT", key);
    c.amount = trigger.amount;
    c.currency = trigger.currency.clone();
    c
}

fn hold(subject: &str, _key: &str, _trigger: &Step, _view: &View, _at: i64) -> CommandSpec {
    CommandSpec::new("HOLD_SHIPMENT", subject)
}

fn expedite(_subject: &str, _key: &str, _trigger: &Step, view: &View, _at: i64) -> CommandSpec {
    CommandSpec::new("EXPEDITE_SHIPMENT", view.order_id)
}

fn mark_paid(_subject: &str, key: &str, trigger: &Step, view: &View, _at: i64) -> CommandSpec {
    let mut c = CommandSpec::new("MARK_ORDER_PAID", view.order_id);
    c.amount = trigger.amount;
    c.currency = trigger.currency.clone();
    c.payment_id = Some(key.to_string());
    c
}

/// The reservation subject is released, the payment key refunded, the shipment subject
/// held, the order's shipment expedited, the order marked paid (`commands.COMMANDS`).
pub(crate) const RELEASE_STOCK: CommandKind = CommandKind { kind: "RELEASE_STOCK", build: release };
pub(crate) const REFUND_PAYMENT: CommandKind = CommandKind { kind: "REFUND_PAYMENT", build: refund };
pub(crate) const HOLD_SHIPMENT: CommandKind = CommandKind { kind: "HOLD_SHIPMENT", build: hold };
const EXPEDITE_SHIPMENT: CommandKind = CommandKind { kind: "EXPEDITE_SHIPMENT", build: expedite };
pub(crate) const MARK_ORDER_PAID: CommandKind = CommandKind { kind: "MARK_ORDER_PAID",
                                                            build: mark_paid };

fn the_order(view: &View, _key: &str, _at: i64) -> Vec<String> {
    vec![view.order_id.to_string()]
}

pub(crate) fn active_reservations(view: &View, _key: &str, at: i64) -> Vec<String> {
    view.active_reservations(at).into_iter().map(str::to_string).collect()
}

// -- 1 RESERVATION_WITHOUT_PAYMENT ------------------------------------------------------------

fn unpaid(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_reservation(view.rank(INV, subject, at)) && !view.any_succeeded(at)
}

fn reservation<'a>(subject: &str, _key: &str, _t: &Step, view: &View<'a>, at: i64) -> Facts<'a> {
    (vec![view.latest(INV, subject, at)], reservation_facts(view, subject, at))
}

const RESERVATION_WITHOUT_PAYMENT: Rule = Rule {
    number: 1, kind: "RESERVATION_WITHOUT_PAYMENT", severity: "LOW",
    command: Some(RELEASE_STOCK), reads: &[INV, PAY],
    trigger: Trigger { source: INV, types: &["RESERVED", "CONFIRMED"],
                       delay: Some("payment_timeout"), first: true, after: None },
    holds: unpaid, fires: None, facts: reservation, subjects: None, resolvable: true,
};

// -- 2 PAYMENT_WITHOUT_RESERVATION ------------------------------------------------------------

fn unreserved(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_payment(view.rank(PAY, subject, at)) && view.active_reservations(at).is_empty()
}

fn payment<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64) -> Facts<'a> {
    (vec![view.latest(PAY, subject, at)], payment_facts(key, trigger))
}

const PAYMENT_WITHOUT_RESERVATION: Rule = Rule {
    number: 2, kind: "PAYMENT_WITHOUT_RESERVATION", severity: "HIGH",
    command: Some(REFUND_PAYMENT), reads: &[PAY, INV],
    trigger: Trigger { source: PAY, types: &["SUCCEEDED"], delay: Some("reservation_timeout"),
                       first: false, after: None },
    holds: unreserved, fires: None, facts: payment, subjects: None, resolvable: true,
};

// -- 3 PAID_NOT_SHIPPED (key: the CONFIRMED reservation; subject: the order) ------------------

fn not_shipped(_subject: &str, key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_reservation(view.rank(INV, key, at))
        && !view.active_payments(at).is_empty()
        && view.live_shipments(at).is_empty()
        && view.cancelled(at).is_none()
}

fn paid_reservation<'a>(_subject: &str, key: &str, _t: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let payments = view.active_payments(at);
    let mut evidence = vec![view.latest(INV, key, at)];
    evidence.extend(payments.iter().map(|p| view.latest(PAY, p, at)));
    let details = vec![
        ("reservation_id".to_string(), key.to_string()),
        ("payment_ids".to_string(), payments.join(",")),
    ];
    (evidence, details)
}

const PAID_NOT_SHIPPED: Rule = Rule {
    number: 3, kind: "PAID_NOT_SHIPPED", severity: "MEDIUM",
    command: Some(EXPEDITE_SHIPMENT), reads: &[INV, PAY, SHIP, ORD],
    trigger: Trigger { source: INV, types: &["CONFIRMED"], delay: Some("shipment_timeout"),
                       first: false, after: None },
    holds: not_shipped, fires: None, facts: paid_reservation, subjects: Some(the_order),
    resolvable: true,
};

// -- 4 SHIPPED_WITHOUT_PAYMENT ----------------------------------------------------------------

fn shipped_unpaid(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    live_shipment(view.rank(SHIP, subject, at)) && view.active_payments(at).is_empty()
}

fn shipment<'a>(subject: &str, _key: &str, _t: &Step, view: &View<'a>, at: i64) -> Facts<'a> {
    let details = vec![
        ("shipment_id".to_string(), subject.to_string()),
        ("shipment_state".to_string(), view.state_name(SHIP, subject, at)),
    ];
    (vec![view.latest(SHIP, subject, at)], details)
}

const SHIPPED_WITHOUT_PAYMENT: Rule = Rule {
    number: 4, kind: "SHIPPED_WITHOUT_PAYMENT", severity: "CRITICAL",
    command: Some(HOLD_SHIPMENT), reads: &[SHIP, PAY],
    trigger: Trigger { source: SHIP, types: &["CREATED", "DISPATCHED"],
                       delay: Some("payment_grace"), first: false, after: None },
    holds: shipped_unpaid, fires: None, facts: shipment, subjects: None, resolvable: true,
};

// -- 5 DUPLICATE_PAYMENT ----------------------------------------------------------------------

fn duplicate(subject: &str, _key: &str, since: i64, view: &View, at: i64) -> bool {
    active_payment(view.rank(PAY, subject, at))
        && view.earlier_payment(subject, since, at).is_some()
}

fn duplicate_facts<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let other = view.earlier_payment(subject, trigger.event_time, at).unwrap_or("");
    let mut details = payment_facts(key, trigger);
    put(&mut details, "other_payment_id", other.to_string());
    (vec![view.first(PAY, other, active_payment, at)], details)
}

const DUPLICATE_PAYMENT: Rule = Rule {
    number: 5, kind: "DUPLICATE_PAYMENT", severity: "CRITICAL",
    command: Some(REFUND_PAYMENT), reads: &[PAY],
    trigger: Trigger { source: PAY, types: &["SUCCEEDED"], delay: None, first: false,
                       after: None },
    holds: duplicate, fires: None, facts: duplicate_facts, subjects: None, resolvable: true,
};

// -- 6 AMOUNT_MISMATCH (decided once: a fixed fact) -------------------------------------------

fn fixed(_subject: &str, _key: &str, _since: i64, _view: &View, _at: i64) -> bool {
    true
}

fn amount_differs(_subject: &str, _key: &str, trigger: &Step, view: &View, at: i64) -> bool {
    match view.placed(at) {
        None => false,
        Some(p) => trigger.amount != p.total_amount || trigger.currency != p.currency,
    }
}

fn amounts<'a>(_subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64) -> Facts<'a> {
    let placed = view.placed(at);
    let mut details = payment_facts(key, trigger);
    if let Some(p) = placed {
        put(&mut details, "expected_amount", opt_int(p.total_amount));
        put(&mut details, "expected_currency", opt_str(&p.currency));
    }
    (vec![placed], details)
}

const AMOUNT_MISMATCH: Rule = Rule {
    number: 6, kind: "AMOUNT_MISMATCH", severity: "HIGH", command: None, reads: &[PAY, ORD],
    trigger: Trigger { source: PAY, types: &["SUCCEEDED"], delay: None, first: false,
                       after: Some("PLACED") },
    holds: fixed, fires: Some(amount_differs), facts: amounts, subjects: None,
    resolvable: false,
};

// -- 7 OVERSHIPMENT ---------------------------------------------------------------------------

fn overshipped(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    live_shipment(view.rank(SHIP, subject, at)) && view.overshipped(at).is_some()
}

fn overshipment<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let (mut evidence, mut details) = shipment(subject, key, trigger, view, at);
    if let Some((sku, shipped, reserved)) = view.overshipped(at) {
        put(&mut details, "sku", sku.to_string());
        put(&mut details, "shipped", shipped.to_string());
        put(&mut details, "reserved", reserved.to_string());
        for s in view.live_shipments(at) {
            if view.shipment_items(s, at).iter().any(|(k, _)| *k == sku) {
                evidence.push(view.latest(SHIP, s, at));
            }
        }
        for r in view.active_reservations(at) {
            if view.reservation_line(r, at).is_some_and(|(k, _)| k == sku) {
                evidence.push(view.latest(INV, r, at));
            }
        }
    }
    (evidence, details)
}

const OVERSHIPMENT: Rule = Rule {
    number: 7, kind: "OVERSHIPMENT", severity: "HIGH",
    command: Some(HOLD_SHIPMENT), reads: &[SHIP, INV],
    trigger: Trigger { source: SHIP, types: &["CREATED"], delay: Some("tcc_grace"), first: false,
                       after: None },
    holds: overshipped, fires: None, facts: overshipment, subjects: None, resolvable: true,
};

// -- 8 REFUND_WITHOUT_RELEASE (key: the refunded payment; subjects: the active reservations) --

fn kept_after_refund(subject: &str, _key: &str, _since: i64, view: &View, at: i64) -> bool {
    active_reservation(view.rank(INV, subject, at))
        && view.active_payments(at).is_empty()
        && view.shipped(at).is_empty()
}

fn refunded_reservation<'a>(subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let (evidence, mut details) = reservation(subject, key, trigger, view, at);
    put(&mut details, "payment_id", key.to_string());
    (evidence, details)
}

const REFUND_WITHOUT_RELEASE: Rule = Rule {
    number: 8, kind: "REFUND_WITHOUT_RELEASE", severity: "MEDIUM",
    command: Some(RELEASE_STOCK), reads: &[PAY, INV, SHIP],
    trigger: Trigger { source: PAY, types: &["REFUNDED"], delay: Some("release_timeout"),
                       first: false, after: None },
    holds: kept_after_refund, fires: None, facts: refunded_reservation,
    subjects: Some(active_reservations), resolvable: true,
};

// -- 9 TCC_EMPTY_ROLLBACK (only a late Try resolves it) ---------------------------------------

fn empty_rollback(subject: &str, _key: &str, since: i64, view: &View, at: i64) -> bool {
    view.first(INV, subject, active_reservation, at.min(since)).is_none()
}

fn rollback<'a>(subject: &str, _key: &str, _t: &Step, _view: &View<'a>, _at: i64) -> Facts<'a> {
    (vec![], vec![("reservation_id".to_string(), subject.to_string())])
}

const TCC_EMPTY_ROLLBACK: Rule = Rule {
    number: 9, kind: "TCC_EMPTY_ROLLBACK", severity: "LOW", command: None, reads: &[INV],
    trigger: Trigger { source: INV, types: &["RELEASED"], delay: Some("tcc_grace"),
                       first: false, after: None },
    holds: empty_rollback, fires: None, facts: rollback, subjects: None, resolvable: true,
};

// -- 10 TCC_HANGING (a fixed fact) ------------------------------------------------------------

fn released(rank: i64) -> bool {
    rank == RELEASED
}

fn hanging(subject: &str, _key: &str, since: i64, view: &View, at: i64) -> bool {
    view.first(INV, subject, released, at).is_some_and(|r| r.event_time < since)
}

fn hanging_facts<'a>(subject: &str, _key: &str, _t: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    let first = view.first(INV, subject, released, at);
    let mut details = vec![("reservation_id".to_string(), subject.to_string())];
    if let Some(r) = first {
        put(&mut details, "released_at", iso(r.event_time));
    }
    (vec![first], details)
}

const TCC_HANGING: Rule = Rule {
    number: 10, kind: "TCC_HANGING", severity: "MEDIUM",
    command: Some(RELEASE_STOCK), reads: &[INV],
    trigger: Trigger { source: INV, types: &["RESERVED"], delay: None, first: false,
                       after: None },
    holds: hanging, fires: None, facts: hanging_facts, subjects: None, resolvable: false,
};

/// The rule table, in the contract's order (rule n at index n - 1).
pub static RULES: [Rule; 15] = [
    RESERVATION_WITHOUT_PAYMENT,
    PAYMENT_WITHOUT_RESERVATION,
    PAID_NOT_SHIPPED,
    SHIPPED_WITHOUT_PAYMENT,
    DUPLICATE_PAYMENT,
    AMOUNT_MISMATCH,
    OVERSHIPMENT,
    REFUND_WITHOUT_RELEASE,
    TCC_EMPTY_ROLLBACK,
    TCC_HANGING,
    PAYMENT_NOT_APPLIED,
    CANCELLED_BUT_CHARGED,
    CANCELLED_BUT_RESERVED,
    CANCELLED_BUT_SHIPPED,
    PAID_WITHOUT_PAYMENT,
];

/// Rule number `n` of the table.
pub fn rule(n: i64) -> Option<&'static Rule> {
    usize::try_from(n - 1).ok().and_then(|i| RULES.get(i))
}
