//! Drift: what changed on the host outside stackctl since its last apply, found by
//! comparing the live state with the record that apply keeps of what it left.

use std::fmt::Write;

use super::Operation;
use super::render::changed;
use crate::state::{KernelState, Key, Resource};

/// One object that is no longer as the last apply left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub recorded: Resource,
    /// `None` when it was deleted.
    pub observed: Option<Resource>,
}

/// The recorded objects that the live state no longer matches, in key order.
pub fn drift(recorded: &KernelState, observed: &KernelState) -> Vec<Drift> {
    recorded
        .resources
        .iter()
        .filter(|(key, resource)| observed.get(key) != Some(*resource))
        .map(|(key, resource)| Drift { recorded: resource.clone(), observed: observed.get(key).cloned() })
        .collect()
}

/// The record after the operations `done` were made on a host whose objects were
/// `observed`: what apply leaves behind, even when it stops early.
pub fn record_after<'a>(observed: &KernelState, done: impl IntoIterator<Item = &'a Operation>) -> KernelState {
    let mut record = observed.clone();
    for operation in done {
        match operation {
            Operation::Create { resource } | Operation::Update { after: resource, .. } => {
                record.insert(resource.clone())
            }
            Operation::Delete { resource } => {
                record.resources.remove(&resource.key());
            }
        }
    }
    record
}

/// The record after an apply that stopped at a failure, on a host whose objects were
/// `observed` before it and are `reobserved` after it: what the host holds now, since a
/// failed operation may have made part of its object and nobody else changed anything
/// in between; but the firewall's resources as the operations `done` left them, since
/// observation recognises rules only against a record, and rule transactions are whole.
pub fn record_after_failure<'a>(
    observed: &KernelState,
    done: impl IntoIterator<Item = &'a Operation>,
    reobserved: &KernelState,
) -> KernelState {
    let firewall = record_after(observed, done);
    let mut record = KernelState::default();
    for resource in firewall.resources.into_values().filter(|resource| resource.kind().is_firewall()) {
        record.insert(resource);
    }
    for resource in reobserved.resources.values().filter(|resource| !resource.kind().is_firewall()) {
        record.insert(resource.clone());
    }
    record
}

/// Drift as text, before the plan that repairs it.
pub fn render_drift(drift: &[Drift]) -> String {
    if drift.is_empty() {
        return String::new();
    }
    let mut out = String::from("Changed outside stackctl since the last apply:\n");
    for change in drift {
        let key: Key = change.recorded.key();
        let what = match &change.observed {
            None => "deleted".to_owned(),
            Some(observed) => changed(&change.recorded, observed),
        };
        let _ = writeln!(out, "  {:<7} {}: {what}", key.kind().name(), key.label());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Namespace, Stray};

    fn namespace(container: &str, loopback_up: bool) -> Resource {
        Resource::Namespace(Namespace {
            container: container.to_owned(),
            name: format!("s:{container}"),
            adopted: false,
            loopback_up,
            conf: None,
        })
    }

    #[test]
    fn a_failed_apply_records_what_the_host_holds_and_the_rules_it_made() {
        let observed = KernelState::from(vec![namespace("a", true), Resource::Stray(Stray { rules: 2 })]);
        // The apply removed the stray rules, made `b` and failed while making `c`, which it
        // left with its loopback down.
        let done = [
            Operation::Delete { resource: Resource::Stray(Stray { rules: 2 }) },
            Operation::Create { resource: namespace("b", true) },
        ];
        let reobserved = KernelState::from(vec![
            namespace("a", true),
            namespace("b", true),
            namespace("c", false),
            Resource::Stray(Stray { rules: 2 }),
        ]);
        let record = record_after_failure(&observed, &done, &reobserved);
        assert_eq!(record, KernelState::from(vec![namespace("a", true), namespace("b", true), namespace("c", false)]));
        assert!(drift(&record, &reobserved).is_empty(), "nothing changed outside since");
    }
}
