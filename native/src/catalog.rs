//! The ten rules: conditions, evidence, details and commands (`streams.rules.catalog`).

use sha2::{Digest, Sha256};

use crate::model::{
    active_payment, active_reservation, live_shipment, Decision, Ordered, Rules, Source, Step,
    RELEASED,
};
use crate::triggers::trigger_of;
use crate::view::View;

/// Static facts of a rule (`RuleSpec`).
pub struct Spec {
    pub kind: &'static str,
    pub severity: &'static str,
    pub resolvable: bool,
}

pub fn spec(rule: i64) -> Spec {
    // (the commands are in `facts`, which builds them with their targets)
    let (kind, severity, resolvable) = match rule {
        1 => ("RESERVATION_WITHOUT_PAYMENT", "LOW", true),
        2 => ("PAYMENT_WITHOUT_RESERVATION", "HIGH", true),
        3 => ("PAID_NOT_SHIPPED", "MEDIUM", true),
        4 => ("SHIPPED_WITHOUT_PAYMENT", "CRITICAL", true),
        5 => ("DUPLICATE_PAYMENT", "CRITICAL", true),
        6 => ("AMOUNT_MISMATCH", "HIGH", false),
        7 => ("OVERSHIPMENT", "HIGH", true),
        8 => ("REFUND_WITHOUT_RELEASE", "MEDIUM", true),
        9 => ("TCC_EMPTY_ROLLBACK", "LOW", true),
        _ => ("TCC_HANGING", "MEDIUM", false),
    };
    Spec { kind, severity, resolvable }
}

/// The inputs a rule's own watermark is over (`streams.rules.catalog.DECIDED_ON`): what it
/// reads, and what the rules that can call for a command of the same type read.
pub fn decided_on(rule: i64) -> &'static [Source] {
    use Source::{Inventory as I, Orders as O, Payments as P, Shipping as S};
    match rule {
        2 | 5 => &[I, P],
        6 => &[O, P],
        9 => &[I],
        _ => &[I, P, S],
    }
}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in &hash[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// sha256 of "{type}|{order_id}|{subject_id}", first 32 hex digits (`streams.rules.ids`).
pub fn mismatch_id(kind: &str, order_id: &str, subject_id: &str) -> String {
    digest(&format!("{kind}|{order_id}|{subject_id}"))
}

/// sha256 of "{command_type}|{target_id}", first 32 hex digits.
pub fn command_id(kind: &str, target_id: &str) -> String {
    digest(&format!("{kind}|{target_id}"))
}

/// Epoch milliseconds as ISO-8601 UTC with milliseconds and Z (`catalog.iso`).
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The compensating action a finding calls for (`CommandSpec`).
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub kind: &'static str,
    pub target_id: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub sku: Option<String>,
    pub quantity: Option<i64>,
}

impl CommandSpec {
    fn new(kind: &'static str, target_id: &str) -> Self {
        CommandSpec { kind, target_id: target_id.to_string(), amount: None, currency: None,
                      sku: None, quantity: None }
    }
    pub fn command_id(&self) -> String {
        command_id(self.kind, &self.target_id)
    }
}

/// A rule fired for a subject at decision time `decided_at` (`Finding`).
pub struct Finding {
    pub rule: i64,
    pub subject_id: String,
    pub key: String,
    pub decided_at: i64,
    pub trigger_time: i64,
    pub evidence: Vec<String>,
    pub details: Ordered<String>,
    pub command: Option<CommandSpec>,
}

fn released(r: i64) -> bool {
    r == RELEASED
}

/// Whether rule `rule`'s condition holds for a subject as of event time `at`.
pub fn holds(rule: i64, subject: &str, key: &str, trigger_time: i64, view: &View, at: i64) -> bool {
    use Source::*;
    match rule {
        1 => active_reservation(view.rank(Inventory, subject, at)) && !view.any_succeeded(at),
        2 => active_payment(view.rank(Payments, subject, at)) && view.active_reservations(at).is_empty(),
        3 => {
            active_reservation(view.rank(Inventory, key, at))
                && !view.active_payments(at).is_empty()
                && view.live_shipments(at).is_empty()
        }
        4 => live_shipment(view.rank(Shipping, subject, at)) && view.active_payments(at).is_empty(),
        5 => {
            active_payment(view.rank(Payments, subject, at))
                && view.earlier_payment(subject, trigger_time, at).is_some()
        }
        7 => live_shipment(view.rank(Shipping, subject, at)) && view.overshipped(at).is_some(),
        8 => {
            active_reservation(view.rank(Inventory, subject, at))
                && view.active_payments(at).is_empty()
                && view.shipped(at).is_empty()
        }
        9 => view.first(Inventory, subject, active_reservation, at.min(trigger_time)).is_none(),
        10 => view.first(Inventory, subject, released, at)
            .is_some_and(|r| r.event_time < trigger_time),
        _ => true, // rule 6: a fixed fact once decided
    }
}

fn set(details: &mut Ordered<String>, key: &str, value: String) {
    crate::model::put(details, key, value);
}

fn opt_int(v: Option<i64>) -> String {
    v.map_or_else(|| "None".to_string(), |v| v.to_string())
}

fn opt_str(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "None".to_string())
}

fn release(view: &View, reservation: &str, at: i64) -> CommandSpec {
    let mut c = CommandSpec::new("RELEASE_STOCK", reservation);
    if let Some((sku, q)) = view.reservation_line(reservation, at) {
        c.sku = Some(sku.to_string());
        c.quantity = Some(q);
    }
    c
}

fn refund(payment: &str, trigger: &Step) -> CommandSpec {
    let mut c = CommandSpec::new("REFUND_PAYMENT", payment);
    c.amount = trigger.amount;
    c.currency = trigger.currency.clone();
    c
}

fn reservation_facts(view: &View, reservation: &str, at: i64) -> Ordered<String> {
    let mut facts = vec![("reservation_id".to_string(), reservation.to_string())];
    if let Some((sku, q)) = view.reservation_line(reservation, at) {
        set(&mut facts, "sku", sku.to_string());
        set(&mut facts, "quantity", q.to_string());
    }
    facts
}

fn payment_facts(payment: &str, trigger: &Step) -> Ordered<String> {
    vec![
        ("payment_id".to_string(), payment.to_string()),
        ("amount".to_string(), opt_int(trigger.amount)),
        ("currency".to_string(), opt_str(&trigger.currency)),
    ]
}

type Facts<'a> = (Vec<Option<&'a Step>>, Ordered<String>, Option<CommandSpec>);

fn facts<'a>(rule: i64, subject: &str, key: &str, trigger: &Step, view: &View<'a>, at: i64)
    -> Facts<'a> {
    use Source::*;
    match rule {
        1 | 8 => {
            let mut details = reservation_facts(view, subject, at);
            if rule == 8 {
                set(&mut details, "payment_id", key.to_string());
            }
            (vec![view.latest(Inventory, subject, at)], details, Some(release(view, subject, at)))
        }
        2 => (vec![view.latest(Payments, subject, at)], payment_facts(key, trigger),
              Some(refund(key, trigger))),
        3 => {
            let payments = view.active_payments(at);
            let mut evidence = vec![view.latest(Inventory, key, at)];
            evidence.extend(payments.iter().map(|p| view.latest(Payments, p, at)));
            let details = vec![
                ("reservation_id".to_string(), key.to_string()),
                ("payment_ids".to_string(), payments.join(",")),
            ];
            (evidence, details, Some(CommandSpec::new("EXPEDITE_SHIPMENT", view.order_id)))
        }
        4 | 7 => {
            let mut details = vec![
                ("shipment_id".to_string(), subject.to_string()),
                ("shipment_state".to_string(), view.state_name(Shipping, subject, at)),
            ];
            let mut evidence = vec![view.latest(Shipping, subject, at)];
            let over = if rule == 7 { view.overshipped(at) } else { None };
            if let Some((sku, shipped, reserved)) = over {
                set(&mut details, "sku", sku.to_string());
                set(&mut details, "shipped", shipped.to_string());
                set(&mut details, "reserved", reserved.to_string());
                for s in view.live_shipments(at) {
                    if view.shipment_items(s, at).iter().any(|(k, _)| *k == sku) {
                        evidence.push(view.latest(Shipping, s, at));
                    }
                }
                for r in view.active_reservations(at) {
                    if view.reservation_line(r, at).is_some_and(|(k, _)| k == sku) {
                        evidence.push(view.latest(Inventory, r, at));
                    }
                }
            }
            (evidence, details, Some(CommandSpec::new("HOLD_SHIPMENT", subject)))
        }
        5 => {
            let other = view.earlier_payment(subject, trigger.event_time, at).unwrap_or("");
            let mut details = payment_facts(key, trigger);
            set(&mut details, "other_payment_id", other.to_string());
            (vec![view.first(Payments, other, active_payment, at)], details,
             Some(refund(key, trigger)))
        }
        6 => {
            let placed = view.placed(at);
            let mut details = payment_facts(key, trigger);
            if let Some(p) = placed {
                set(&mut details, "expected_amount", opt_int(p.total_amount));
                set(&mut details, "expected_currency", opt_str(&p.currency));
            }
            (vec![placed], details, None)
        }
        9 => (vec![], vec![("reservation_id".to_string(), subject.to_string())], None),
        _ => {
            let released = view.first(Inventory, subject, released, at);
            let mut details = vec![("reservation_id".to_string(), subject.to_string())];
            if let Some(r) = released {
                set(&mut details, "released_at", iso(r.event_time));
            }
            (vec![released], details, Some(release(view, subject, at)))
        }
    }
}

fn amount_differs(trigger: &Step, placed: Option<&Step>) -> bool {
    match placed {
        None => false,
        Some(p) => trigger.amount != p.total_amount || trigger.currency != p.currency,
    }
}

/// (subject, key) of each mismatch a decision can open (`_subjects`).
fn subjects(d: &Decision, view: &View) -> Vec<(String, String)> {
    match d.rule {
        8 => view.active_reservations(d.due).iter().map(|r| (r.to_string(), d.key.clone())).collect(),
        3 => vec![(view.order_id.to_string(), d.key.clone())],
        _ => vec![(d.key.clone(), d.key.clone())],
    }
}

fn fires_for(rule: i64, subject: &str, key: &str, trigger: &Step, view: &View, at: i64) -> bool {
    if rule == 6 {
        amount_differs(trigger, view.placed(at))
    } else {
        holds(rule, subject, key, trigger.event_time, view, at)
    }
}

/// Whether `decide` finds anything for the decision (without building the findings).
pub fn fires(d: &Decision, view: &View, rules: &Rules) -> bool {
    let Some(trigger) = trigger_of(view, rules, d) else { return false };
    subjects(d, view).iter().any(|(s, k)| fires_for(d.rule, s, k, trigger, view, d.due))
}

/// Evaluate a decision as of its time D: one Finding per subject the rule fires for.
pub fn decide(d: &Decision, view: &View, rules: &Rules) -> Vec<Finding> {
    let at = d.due;
    let Some(trigger) = trigger_of(view, rules, d) else { return Vec::new() };
    let rule = d.rule;
    let mut findings = Vec::new();
    for (subject, key) in subjects(d, view) {
        if !fires_for(rule, &subject, &key, trigger, view, at) {
            continue;
        }
        let (more, mut details, command) = facts(rule, &subject, &key, trigger, view, at);
        let mut evidence = vec![trigger.event_id.clone()];
        for s in more.into_iter().flatten() {
            if !evidence.iter().any(|e| *e == s.event_id) {
                evidence.push(s.event_id.clone());
            }
        }
        set(&mut details, "trigger_time", iso(trigger.event_time));
        findings.push(Finding {
            rule,
            subject_id: subject,
            key,
            decided_at: at,
            trigger_time: trigger.event_time,
            evidence,
            details,
            command,
        });
    }
    findings
}
