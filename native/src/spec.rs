//! What a rule of the rule table is made of (`streams/rules/spec.py`): its trigger, its
//! conditions, its static facts, and the command it calls for.

use crate::ids::command_id;
use crate::model::{Ordered, Source, Step};
use crate::view::View;

/// The events that call for a rule's decisions, and when each is decided
/// (`streams.rules.spec.Trigger`).
///
/// Each event of `source` whose type is one of `types` calls for one decision, keyed by its
/// entity (the order_id for an order event), at D = its event_time + the setting named
/// `delay` (none: D = its time). `first`: only the entity's first such event by
/// (event_time, event_id). `after`: a type of the order's own events; without one, no
/// decision; with one, D = max(event_time, the order's first of them) + delay. `first` and
/// `after` do not combine, and an order event's trigger has no `after`.
pub struct Trigger {
    pub source: Source,
    pub types: &'static [&'static str],
    pub delay: Option<&'static str>,
    pub first: bool,
    pub after: Option<&'static str>,
}

/// The compensating action a finding calls for (`CommandSpec`).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    pub kind: &'static str,
    pub target_id: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub sku: Option<String>,
    pub quantity: Option<i64>,
    pub payment_id: Option<String>,
}

impl CommandSpec {
    pub fn new(kind: &'static str, target_id: &str) -> Self {
        CommandSpec { kind, target_id: target_id.to_string(), amount: None, currency: None,
                      sku: None, quantity: None, payment_id: None }
    }
    pub fn command_id(&self) -> String {
        command_id(self.kind, &self.target_id)
    }
}

/// Whether a rule's condition holds for (subject, key, trigger_time) as of event time `at`.
pub type Holds = fn(&str, &str, i64, &View, i64) -> bool;
/// Whether a rule fires at D for (subject, key) with its trigger event (where that differs
/// from `Holds` at D).
pub type Fires = fn(&str, &str, &Step, &View, i64) -> bool;
/// A finding's evidence events after the trigger, and its details.
pub type Facts<'a> = (Vec<Option<&'a Step>>, Ordered<String>);
/// The evidence and details of a finding for (subject, key, trigger) as of D.
pub type FactsOf = for<'a> fn(&str, &str, &Step, &View<'a>, i64) -> Facts<'a>;
/// The subjects of the mismatches a decision for `key` at D can open.
pub type Subjects = fn(&View, &str, i64) -> Vec<String>;

/// A type of compensating action, and how a finding builds it from (subject, key, trigger)
/// as of D.
pub struct CommandKind {
    pub kind: &'static str,
    pub build: fn(&str, &str, &Step, &View, i64) -> CommandSpec,
}

/// One rule: one entry of the rule table (`streams.rules.spec.RuleSpec`; the fields mean
/// the same).
pub struct Rule {
    pub number: i64,
    pub kind: &'static str,
    pub severity: &'static str,
    pub command: Option<CommandKind>,
    pub reads: &'static [Source],
    pub trigger: Trigger,
    pub holds: Holds,
    pub fires: Option<Fires>,
    pub facts: FactsOf,
    pub subjects: Option<Subjects>,
    pub resolvable: bool,
}
