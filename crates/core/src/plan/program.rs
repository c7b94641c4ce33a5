//! A plan as the program the shell runs: every step apply takes, in order, decided here.
//!
//! The planner says which resources change and in which order; the program says how: which
//! operations run side by side (a stage), the firewall's operations of each phase as one
//! `nft` transaction with its script, when the stack's names are published, when the
//! apply record is kept, and a swap's verification and drain. The shell only runs the
//! steps; the in-memory kernel of the property tests runs the same ones.

use std::fmt::Write;
use std::ops::Range;

use super::{Leaving, Operation, Plan, Readiness, Swap, record_after};
use crate::firewall::{Objects, objects, render, render_replacing};
use crate::names::{Zone, zone};
use crate::state::{KernelState, Kind, Resource, Sysctl};

/// The steps of an apply, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub steps: Vec<Step>,
}

/// One step of a program. Operations are named by their range in the plan's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Replace the stack's tables whole with the rules they hold, once, before anything
    /// else: tables an earlier stackctl made with base chains that cannot be changed in
    /// place (see [`Program::replacing_tables`]).
    ReplaceTables { script: String },
    /// The firewall's operations of a phase, as one `nft` transaction: the tables hold
    /// what the phase leaves, changed in place, so no packet meets a rule whose set is not
    /// filled yet.
    Rules { operations: Range<usize>, script: String },
    /// Operations of one kind and one action that depend on none of each other: made side
    /// by side.
    Stage { operations: Range<usize> },
    /// Keep the apply record as the operations before this step leave it: a swap is about
    /// to wait, and an apply interrupted while it waits then leaves no drift.
    Record,
    /// Serve the stack's names as the operations before this step leave them; a zone with
    /// no clients withdraws the stack's names.
    PublishNames { zone: Zone },
    /// Wait until each container that takes an alias accepts a connection on each port.
    Verify { ports: Vec<Readiness> },
    /// Delete the unanswered connections through the aliases to the containers they left,
    /// and wait for what the removal would cut to finish (up to the swap's timeout).
    Drain { swap: Box<Swap> },
}

/// What the stack's tables hold when the program starts.
#[derive(Debug, Clone, Copy)]
pub enum Tables<'a> {
    /// As observed, changed in place.
    InPlace(&'a Objects),
    /// Replaced whole first, with the rules the observed state holds.
    Replaced,
}

impl Program {
    /// The program that makes `plan`, planned against `observed`, for stack `stack`
    /// whose tables hold `tables` (as observed).
    pub fn of(stack: &str, plan: &Plan, observed: &KernelState, tables: &Objects) -> Program {
        Program::build(stack, plan, observed, Tables::InPlace(tables))
    }

    /// The same program, for tables the kernel refuses to change in place (a base chain
    /// made differently by an earlier stackctl): it replaces them whole first, with what
    /// they hold, and changes them in place from there.
    pub fn replacing_tables(stack: &str, plan: &Plan, observed: &KernelState) -> Program {
        Program::build(stack, plan, observed, Tables::Replaced)
    }

    fn build(stack: &str, plan: &Plan, observed: &KernelState, tables: Tables) -> Program {
        let mut steps = Vec::new();
        if plan.is_empty() {
            return Program { steps };
        }
        let mut tables = match tables {
            Tables::InPlace(tables) => tables.clone(),
            Tables::Replaced => {
                steps.push(Step::ReplaceTables { script: render_replacing(stack, observed) });
                objects(observed)
            }
        };
        let mut start = 0;
        for (index, phase) in plan.phases().into_iter().enumerate() {
            let end = start + phase.len();
            for stage in stages(phase) {
                let operations = start + stage.start..start + stage.end;
                if phase[stage.start].key().kind().is_firewall() {
                    // The rules as the whole phase leaves the state.
                    let after = record_after(observed, &plan.operations[..end]);
                    let script = render(stack, &after, &tables);
                    tables = objects(&after);
                    steps.push(Step::Rules { operations, script });
                } else {
                    steps.push(Step::Stage { operations });
                }
            }
            match (&plan.swap, index) {
                // The new containers are wired: their names are served, and they must
                // accept before the aliases move to them.
                (Some(swap), 0) => {
                    steps.push(Step::Record);
                    let after = record_after(observed, &plan.operations[..end]);
                    steps.push(Step::PublishNames { zone: zone(stack, &after) });
                    steps.push(Step::Verify { ports: swap.verify.clone() });
                }
                // The aliases moved: what the removal cuts drains first.
                (Some(swap), 1) => {
                    steps.push(Step::Record);
                    steps.push(Step::Drain { swap: Box::new(swap.clone()) });
                }
                _ => {}
            }
            start = end;
        }
        steps.push(Step::PublishNames { zone: zone(stack, &record_after(observed, &plan.operations)) });
        Program { steps }
    }

    /// The rule transactions, each with what the kernel holds before it: the script to
    /// check it with (`nft -c`) before any change, as one file.
    pub fn checks(&self) -> Vec<String> {
        let replacing = self.steps.iter().find_map(|step| match step {
            Step::ReplaceTables { script } => Some(script.as_str()),
            _ => None,
        });
        self.steps
            .iter()
            .filter_map(|step| match step {
                Step::Rules { script, .. } => Some(format!("{}{script}", replacing.unwrap_or_default())),
                _ => None,
            })
            .collect()
    }
}

/// The names to serve after an apply that stopped part way: those of what it made.
pub fn names_after_failure(stack: &str, observed: &KernelState, done: &[Operation]) -> Zone {
    zone(stack, &record_after(observed, done))
}

/// The operations of a phase cut into stages: runs of operations of one kind and one
/// action, and the run of the firewall's operations. The planner orders operations so
/// that each depends only on earlier kinds (or, for deletes, later ones), so the
/// operations of a stage are independent of each other; but for a link that takes an
/// address another link of the stage gives up, which the planner puts after it: it starts
/// a stage of its own.
fn stages(operations: &[Operation]) -> Vec<Range<usize>> {
    // The firewall's operations, next to each other in a plan, are one transaction.
    let class = |operation: &Operation| {
        let kind = operation.key().kind();
        if kind.is_firewall() { None } else { Some((kind, std::mem::discriminant(operation))) }
    };
    let takes_from = |earlier: &[Operation], operation: &Operation| {
        let Operation::Update { after: Resource::Link(wanted), .. } = operation else { return false };
        earlier.iter().any(|earlier| {
            matches!(earlier, Operation::Update { before: Resource::Link(had), .. }
                if had.network == wanted.network && had.address.addr() == wanted.address.addr())
        })
    };
    let mut stages = Vec::new();
    let mut start = 0;
    for index in 1..=operations.len() {
        if index == operations.len()
            || class(&operations[index]) != class(&operations[start])
            || takes_from(&operations[start..index], &operations[index])
        {
            if start < index {
                stages.push(start..index);
            }
            start = index;
        }
    }
    stages
}

/// The program as numbered lines, for a plan's reader: what apply does, step by step.
pub fn render_steps(program: &Program, plan: &Plan) -> String {
    if program.steps.is_empty() {
        return String::new();
    }
    let mut out = String::from("Steps:\n");
    for (number, step) in program.steps.iter().enumerate() {
        let (verb, what) = describe(step, plan);
        let _ = writeln!(out, "{:>4}. {verb:<8} {what}", number + 1);
    }
    out
}

fn describe(step: &Step, plan: &Plan) -> (&'static str, String) {
    match step {
        Step::ReplaceTables { .. } => (
            "replace",
            "the stack's tables whole, with the rules they hold: an earlier stackctl made them so that they cannot \
             be changed in place"
                .to_owned(),
        ),
        Step::Rules { operations, .. } => {
            let kinds = counted(&plan.operations[operations.clone()]);
            ("rules", format!("one nft transaction, checked before any change: {kinds}"))
        }
        Step::Stage { operations } => {
            let operations = &plan.operations[operations.clone()];
            match &operations[0] {
                Operation::Create { resource: Resource::Sysctl(sysctl) }
                | Operation::Update { after: Resource::Sysctl(sysctl), .. } => ("set", set(sysctl)),
                Operation::Delete { resource: Resource::Sysctl(sysctl) } => ("restore", restore(sysctl)),
                Operation::Create { .. } => ("create", counted(operations)),
                Operation::Update { .. } => ("change", counted(operations)),
                Operation::Delete { .. } => ("delete", counted(operations)),
            }
        }
        Step::Record => ("record", "keep the apply record of what is made so far, before waiting".to_owned()),
        Step::PublishNames { zone } if zone.clients.is_empty() => {
            ("names", "withdraw the stack's names from the host's name server".to_owned())
        }
        Step::PublishNames { zone } => {
            let clients = zone.clients.len();
            let containers = if clients == 1 { "container" } else { "containers" };
            ("names", format!("publish the names of {clients} {containers} to the host's name server"))
        }
        Step::Verify { ports } => {
            let ports: Vec<String> = ports
                .iter()
                .map(|ready| format!("{} accepts tcp/{} at {}", ready.container, ready.port, ready.address))
                .collect();
            ("verify", format!("{}, before the aliases move", ports.join("; ")))
        }
        Step::Drain { swap } => {
            let leaving: Vec<&str> = swap.drain.iter().map(|leaving: &Leaving| leaving.container.as_str()).collect();
            (
                "drain",
                format!("connections of {} finish, up to {}, before what follows", leaving.join(", "), swap.timeout),
            )
        }
    }
}

/// `3 links, 1 route`: the operations by kind, in the order they come.
fn counted(operations: &[Operation]) -> String {
    let mut counts: Vec<(Kind, usize)> = Vec::new();
    for operation in operations {
        let kind = operation.key().kind();
        match counts.iter_mut().find(|(counted, _)| *counted == kind) {
            Some((_, count)) => *count += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
        .iter()
        .map(|(kind, count)| format!("{count} {}", if *count == 1 { kind.name() } else { plural(*kind) }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A kind's name for more than one resource.
fn plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Policy => "policies",
        Kind::Alias => "aliases",
        // Names that are plural already, or uncountable.
        Kind::Stray | Kind::Namespace | Kind::Hosts => kind.name(),
        Kind::Forward => "forwards",
        Kind::Flow => "flows",
        Kind::Sysctl => "sysctls",
        Kind::Bridge => "bridges",
        Kind::Link => "links",
        Kind::Route => "routes",
    }
}

fn set(sysctl: &Sysctl) -> String {
    match &sysctl.before {
        Some(before) if *before != sysctl.value => {
            format!("{} = {} on the host (it is {before}; destroy gives {before} back)", sysctl.name, sysctl.value)
        }
        _ => format!("{} = {} on the host", sysctl.name, sysctl.value),
    }
}

fn restore(sysctl: &Sysctl) -> String {
    match &sysctl.before {
        Some(before) if *before != sysctl.value => {
            format!("{} = {before} on the host, as it was before stackctl set it", sysctl.name)
        }
        _ => format!(
            "nothing: {} stays {} on the host (it was so, or another stack needs it)",
            sysctl.name, sysctl.value
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Stack, validate_file};
    use crate::plan::plan;
    use crate::spec::SourceFile;
    use crate::state::{FORWARDING, HostFacts, HostSetting, lower};

    fn stack(text: &str) -> Stack {
        validate_file(&SourceFile { name: "stack.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid")
    }

    fn host(forwarding: &str) -> HostFacts {
        let setting =
            HostSetting { name: FORWARDING.to_owned(), value: forwarding.to_owned(), held_by: vec![], before: None };
        HostFacts { settings: vec![setting], ..HostFacts::default() }
    }

    /// The state an apply of `plan` leaves, as the record keeps it.
    fn applied(observed: &KernelState, plan: &Plan) -> KernelState {
        record_after(observed, &plan.operations)
    }

    /// A cold apply: rules first, as one transaction, then forwarding, then each kind side
    /// by side, and the names last; every operation in exactly one step, in order.
    #[test]
    fn a_cold_apply_runs_every_operation_once_in_order() {
        let stack = stack(include_str!("../../../../examples/web-app-db.yaml"));
        let desired = lower(&stack, &KernelState::default(), &host("0")).expect("lowers");
        let plan = plan(&desired, &KernelState::default());
        let program = Program::of(&stack.name, &plan, &KernelState::default(), &Objects::default());
        let mut next = 0;
        for step in &program.steps {
            if let Step::Rules { operations, .. } | Step::Stage { operations } = step {
                assert_eq!(operations.start, next, "{step:?}");
                next = operations.end;
            }
        }
        assert_eq!(next, plan.operations.len());
        assert!(matches!(program.steps[0], Step::Rules { .. }), "rules come first");
        assert!(matches!(program.steps.last(), Some(Step::PublishNames { .. })), "names come last");
        insta::assert_snapshot!(render_steps(&program, &plan));
    }

    /// A swap: wiring, record, names, verify; the repoint as one transaction; record,
    /// drain; the removal; names.
    #[test]
    fn a_swap_verifies_before_the_repoint_and_drains_before_the_removal() {
        let old = stack(include_str!("../../../../examples/web-app-db.yaml"));
        let new = stack(include_str!("../../../../examples/web-app-db-v2.yaml"));
        let facts = host("1");
        let observed = applied(
            &KernelState::default(),
            &plan(&lower(&old, &KernelState::default(), &facts).unwrap(), &KernelState::default()),
        );
        let plan = plan(&lower(&new, &observed, &facts).expect("lowers"), &observed);
        assert!(plan.swap.is_some(), "the example is a swap");
        let program = Program::of(&new.name, &plan, &observed, &objects(&observed));
        let order: Vec<&str> = program
            .steps
            .iter()
            .map(|step| match step {
                Step::ReplaceTables { .. } => "replace",
                Step::Rules { .. } => "rules",
                Step::Stage { .. } => "stage",
                Step::Record => "record",
                Step::PublishNames { .. } => "names",
                Step::Verify { .. } => "verify",
                Step::Drain { .. } => "drain",
            })
            .collect();
        let verify = order.iter().position(|step| *step == "verify").expect("a verify step");
        let drain = order.iter().position(|step| *step == "drain").expect("a drain step");
        assert_eq!(&order[verify - 2..verify], ["record", "names"]);
        assert_eq!(order[verify + 1], "rules", "the repoint is one rule transaction");
        assert_eq!(order[drain - 1], "record");
        insta::assert_snapshot!(render_steps(&program, &plan));
    }

    /// Destroy gives forwarding back as it found it, unless another stack still holds it.
    #[test]
    fn destroy_restores_forwarding_only_when_no_other_stack_holds_it() {
        let stack = stack(include_str!("../../../../examples/web-app-db.yaml"));
        let desired = lower(&stack, &KernelState::default(), &host("0")).expect("lowers");
        let observed = applied(&KernelState::default(), &plan(&desired, &KernelState::default()));
        let restored = |facts: &HostFacts| {
            let plan = plan(&crate::state::Desired::nothing(facts), &observed);
            plan.operations.iter().find_map(|operation| match operation {
                Operation::Delete { resource: Resource::Sysctl(sysctl) } => sysctl.before.clone(),
                _ => None,
            })
        };
        assert_eq!(restored(&host("1")), Some("0".to_owned()));
        let mut shared = host("1");
        shared.settings[0].held_by = vec!["other".to_owned()];
        shared.settings[0].before = Some("0".to_owned());
        assert_eq!(restored(&shared), Some("1".to_owned()), "left on for the other stack");
    }

    /// An edit that takes away the stack's last network that reaches outside, but keeps an
    /// internal one, lets forwarding go as it is: turning it off would turn off the bridge
    /// that stays.
    #[test]
    fn forwarding_stays_while_the_stack_keeps_a_bridge() {
        let before = stack(
            "name: s\nnetworks:\n  out: {}\n  inside: { internal: true }\ncontainers:\n  a: { networks: [out, inside] }\n",
        );
        let after =
            stack("name: s\nnetworks:\n  inside: { internal: true }\ncontainers:\n  a: { networks: [inside] }\n");
        let facts = host("0");
        let observed = applied(
            &KernelState::default(),
            &plan(&lower(&before, &KernelState::default(), &facts).unwrap(), &KernelState::default()),
        );
        let plan = plan(&lower(&after, &observed, &facts).expect("lowers"), &observed);
        let given_back = plan.operations.iter().find_map(|operation| match operation {
            Operation::Delete { resource: Resource::Sysctl(sysctl) } => Some(sysctl.before.clone()),
            _ => None,
        });
        assert_eq!(given_back, Some(Some("1".to_owned())), "{}", crate::plan::render_text(&plan, false));
    }
}
