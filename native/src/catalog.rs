//! Deciding the rules of the rule table (`streams/rules/catalog.py`): findings, conditions.

use crate::model::{put, Decision, Ordered, Step};
use crate::spec::{CommandSpec, Rule};
use crate::table::rule;
use crate::triggers::{trigger_of, Plan};
use crate::ids::iso;
use crate::view::View;

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

/// Whether rule `number`'s condition holds for a subject as of event time `at` (a rule not
/// in the table: true, nothing to resolve).
pub fn holds(number: i64, subject: &str, key: &str, trigger_time: i64, view: &View, at: i64)
    -> bool {
    rule(number).is_none_or(|r| (r.holds)(subject, key, trigger_time, view, at))
}

/// The subjects of the mismatches a decision can open.
fn subjects(r: &Rule, d: &Decision, view: &View) -> Vec<String> {
    match r.subjects {
        None => vec![d.key.clone()],
        Some(of) => of(view, &d.key, d.due),
    }
}

fn fires_for(r: &Rule, subject: &str, key: &str, trigger: &Step, view: &View, at: i64) -> bool {
    match r.fires {
        Some(fires) => fires(subject, key, trigger, view, at),
        None => (r.holds)(subject, key, trigger.event_time, view, at),
    }
}

/// Whether `decide` finds anything for the decision (without building the findings).
pub fn fires(d: &Decision, view: &View, plan: &Plan) -> bool {
    let Some(trigger) = trigger_of(view, plan, d) else { return false };
    let Some(r) = rule(d.rule) else { return false };
    if r.subjects.is_none() {
        return fires_for(r, &d.key, &d.key, trigger, view, d.due);
    }
    subjects(r, d, view).iter().any(|s| fires_for(r, s, &d.key, trigger, view, d.due))
}

/// Evaluate a decision as of its time D: one Finding per subject the rule fires for.
pub fn decide(d: &Decision, view: &View, plan: &Plan) -> Vec<Finding> {
    let at = d.due;
    let Some(trigger) = trigger_of(view, plan, d) else { return Vec::new() };
    let Some(r) = rule(d.rule) else { return Vec::new() };
    let mut findings = Vec::new();
    for subject in subjects(r, d, view) {
        if !fires_for(r, &subject, &d.key, trigger, view, at) {
            continue;
        }
        let (more, mut details) = (r.facts)(&subject, &d.key, trigger, view, at);
        let mut evidence = vec![trigger.event_id.clone()];
        for s in more.into_iter().flatten() {
            if !evidence.iter().any(|e| *e == s.event_id) {
                evidence.push(s.event_id.clone());
            }
        }
        put(&mut details, "trigger_time", iso(trigger.event_time));
        let command = r.command.as_ref().map(|c| (c.build)(&subject, &d.key, trigger, view, at));
        findings.push(Finding {
            rule: d.rule,
            subject_id: subject,
            key: d.key.clone(),
            decided_at: at,
            trigger_time: trigger.event_time,
            evidence,
            details,
            command,
        });
    }
    findings
}
