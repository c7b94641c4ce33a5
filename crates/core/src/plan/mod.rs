//! The planner: the ordered operations that turn observed state into desired state.

mod adopted;
mod collision;
mod drift;
mod limits;
mod processes;
mod program;
mod render;
mod saved;
mod swap;

pub use adopted::{
    AdoptedElsewhere, AdoptedFacts, AdoptedPath, FileKind, HostRole, NamespaceId, Unusable, UnusableNamespace,
    unusable_namespaces,
};
pub use collision::{Collision, SubnetClash, collisions, new_subnets, subnet_clashes};
pub use drift::{Drift, drift, record_after, record_after_failure, render_drift};
pub use limits::{FileLimit, ShortOfFiles, open_files_needed, short_of_files};
pub use processes::{Fate, Process, Stranded};
pub use program::{Program, Step, names_after_failure, render_steps};
pub use render::{Marks, Summary, render_operations, render_text};
pub use saved::{
    Rederived, Refusal, SAVED_PLAN_VERSION, STACK_FILE_LIMIT, SavedPlan, Staleness, Tampering, stack_digest,
};
pub use swap::{Break, BreakReason, Leaving, Listening, Move, Readiness, Start, Swap, Unready, Waiting};

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::state::{Desired, FORWARDING, KernelState, Key, Kind, Resource};
use swap::Phases;

/// One change to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Operation {
    Create {
        resource: Resource,
    },
    Update {
        before: Resource,
        after: Resource,
    },
    /// The resource as observed; but for a host setting, whose `before` is what deleting it
    /// gives back, which the planner decides (see `let_go`).
    Delete {
        resource: Resource,
    },
}

impl Operation {
    pub fn key(&self) -> Key {
        match self {
            Operation::Create { resource } | Operation::Delete { resource } => resource.key(),
            Operation::Update { after, .. } => after.key(),
        }
    }
}

/// Operations in the order they must run. A replacement is a delete and a later create
/// of the same key. A plan that moves aliases off containers it disconnects runs in the
/// phases of its swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<Swap>,
    /// The processes that run in namespaces the plan deletes, and what happens to them:
    /// what the live kernel holds next to the plan, read again by each apply, so never
    /// saved with it.
    #[serde(skip)]
    pub stranded: Stranded,
    /// Alias moves that cannot be made before break (another container takes the old
    /// one's address, or the network changes whole), which the plan says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaks: Vec<Break>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operations in the phases they run in: all of them, or, with a swap, the
    /// wiring, the repoint and the removal.
    pub fn phases(&self) -> Vec<&[Operation]> {
        match &self.swap {
            None => vec![&self.operations[..]],
            Some(swap) => vec![
                &self.operations[..swap.repoint_at],
                &self.operations[swap.repoint_at..swap.remove_at],
                &self.operations[swap.remove_at..],
            ],
        }
    }

    /// The keys that are deleted and created again.
    pub fn replaced(&self) -> BTreeSet<Key> {
        let deleted: BTreeSet<Key> = self
            .operations
            .iter()
            .filter(|operation| matches!(operation, Operation::Delete { .. }))
            .map(Operation::key)
            .collect();
        self.operations
            .iter()
            .filter(|operation| matches!(operation, Operation::Create { .. }))
            .map(Operation::key)
            .filter(|key| deleted.contains(key))
            .collect()
    }
}

/// Where an operation stands in a plan, compared in order: its kind, whether it creates
/// (changes in place come first), after how many other changes of its kind it must come
/// (a link that takes an address another link gives up comes after that one), its
/// container's wiring rank, and its key.
type Place<'a> = (Kind, bool, usize, usize, &'a Key);

/// Plans the operations that turn `observed` into `desired.state`.
///
/// When aliases leave containers that the plan disconnects or removes, the plan is a swap
/// (see [`Swap`]): the operations to the state with everything new wired and the old
/// containers still serving, then those that repoint the aliases, then those to the
/// desired state.
pub fn plan(desired: &Desired, observed: &KernelState) -> Plan {
    let breaks = swap::breaks(desired, observed);
    let Some(Phases { made, repointed, swap }) = swap::phases(desired, observed) else {
        let operations = let_go(operations(&desired.state, &desired.wiring_order, observed), desired);
        return Plan { operations, breaks, ..Plan::default() };
    };
    let mut phased = operations(&made, &desired.wiring_order, observed);
    let repoint_at = phased.len();
    phased.extend(operations(&repointed, &desired.wiring_order, &made));
    let remove_at = phased.len();
    phased.extend(operations(&desired.state, &desired.wiring_order, &repointed));
    let swap = Some(Swap { repoint_at, remove_at, ..swap });
    Plan { operations: let_go(phased, desired), swap, breaks, ..Plan::default() }
}

/// Deleting a host setting gives back the value it had before; one that is still needed is
/// let go as it is (its `before` becomes its value), for the last stack that needs it to
/// give back: other stacks hold it, or, for forwarding, the stack keeps a bridge. Writing
/// `net.ipv4.ip_forward` sets every interface's forwarding with it, so turning it off
/// would turn off the bridges that stay, this stack's or another's.
fn let_go(mut operations: Vec<Operation>, desired: &Desired) -> Vec<Operation> {
    let keeps_a_bridge = desired.state.of_kind(Kind::Bridge).next().is_some();
    for operation in &mut operations {
        if let Operation::Delete { resource: Resource::Sysctl(sysctl) } = operation
            && (desired.held_elsewhere.contains(&sysctl.name) || (sysctl.name == FORWARDING && keeps_a_bridge))
        {
            sysctl.before = Some(sysctl.value.clone());
        }
    }
    operations
}

/// Whether making `plan` changes what the stacks of a host share, so that it must be made
/// under the host's subnets lock, with the host's settings as the plan saw them: it makes
/// networks (their subnets), sets or gives back a host setting, or deletes a bridge (which
/// other stacks count when they let a setting go).
pub fn changes_what_stacks_share(plan: &Plan) -> bool {
    !new_subnets(plan).is_empty()
        || plan.operations.iter().any(|operation| match operation {
            Operation::Delete { resource } => matches!(resource.kind(), Kind::Sysctl | Kind::Bridge),
            Operation::Create { resource } | Operation::Update { after: resource, .. } => {
                resource.kind() == Kind::Sysctl
            }
        })
}

/// The operations that turn `observed` into `desired`.
///
/// Order: every delete first, dependents before what they depend on (freeing names and
/// addresses for what follows); then, kind by kind in creation order, the changes in place
/// and the creations. Within a kind, resources follow the wiring order of their containers,
/// so a container's targets are wired before it. Deterministic: the same inputs give the
/// same plan.
fn operations(desired: &KernelState, wiring_order: &[String], observed: &KernelState) -> Vec<Operation> {
    let rank: HashMap<&str, usize> =
        wiring_order.iter().enumerate().map(|(rank, name)| (name.as_str(), rank)).collect();
    // Resources of no container come first; those of containers that are only observed
    // come after the desired ones. Ties go by key. The keys are borrowed from the two
    // states: sorting thousands of operations should not copy their names.
    let rank_of = |key: &Key| key.container().map_or(0, |name| rank.get(name).map_or(usize::MAX, |rank| rank + 1));

    let replaced = replacements(desired, observed);
    let mut deletes: Vec<(Place, &Resource)> = observed
        .resources
        .iter()
        .filter(|(key, _)| !desired.resources.contains_key(*key) || replaced.contains(*key))
        .map(|(key, resource)| ((key.kind(), false, 0, rank_of(key), key), resource))
        .collect();
    deletes.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    let after = address_order(desired, observed);

    // Kind by kind, changes in place go before creations, so an address that moves away is
    // free before a new object takes it.
    let mut changes: Vec<(Place, Operation)> = desired
        .resources
        .iter()
        .filter_map(|(key, wanted)| {
            let operation = match observed.get(key) {
                Some(_) if replaced.contains(key) => Operation::Create { resource: wanted.clone() },
                Some(existing) if existing != wanted => {
                    Operation::Update { before: existing.clone(), after: wanted.clone() }
                }
                Some(_) => return None,
                None => Operation::Create { resource: wanted.clone() },
            };
            let creates = matches!(operation, Operation::Create { .. });
            let wave = after.get(key).copied().unwrap_or(0);
            Some(((key.kind(), creates, wave, rank_of(key), key), operation))
        })
        .collect();
    changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    deletes
        .into_iter()
        .map(|(_, resource)| Operation::Delete { resource: resource.clone() })
        .chain(changes.into_iter().map(|(_, operation)| operation))
        .collect()
}

/// For each link that changes its address to one that another changing link of its network
/// gives up, how many such links must change before it (a chain of hand-overs); links in
/// a cycle of hand-overs keep the order of their keys.
fn address_order(desired: &KernelState, observed: &KernelState) -> HashMap<Key, usize> {
    let changed: Vec<(&Key, &crate::state::Link, &crate::state::Link)> = desired
        .resources
        .iter()
        .filter_map(|(key, wanted)| match (observed.get(key), wanted) {
            (Some(Resource::Link(had)), Resource::Link(wanted)) if had.address != wanted.address => {
                Some((key, had, wanted))
            }
            _ => None,
        })
        .collect();
    let mut waves: HashMap<Key, usize> = HashMap::new();
    // A wave more for each link that still follows one not placed yet; at most as many
    // rounds as links, which a cycle would otherwise never leave.
    for _ in 0..changed.len() {
        let mut moved = false;
        for (key, _, wanted) in &changed {
            let after = changed
                .iter()
                .filter(|(other, had, _)| {
                    other != key && had.network == wanted.network && had.address.addr() == wanted.address.addr()
                })
                .map(|(other, _, _)| waves.get(*other).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0)
                .min(changed.len());
            if waves.get(*key).copied().unwrap_or(0) < after {
                waves.insert((*key).clone(), after);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    waves
}

/// The keys whose objects must be deleted and created again: those whose identity changes,
/// and, transitively, those that depend on one that is replaced or deleted (a link lives in
/// its namespace and on its bridge; a route needs its link), or on a link whose change
/// takes its address away (the kernel drops the routes through it).
///
/// The dependencies of the observed object count as well as those of the wanted one: the
/// kernel takes an object down with what it depends on, so a route that moves to another
/// network while its old link is deleted is gone by the time an update would reach it.
fn replacements(desired: &KernelState, observed: &KernelState) -> BTreeSet<Key> {
    let deleted = |key: &Key| observed.get(key).is_some() && !desired.resources.contains_key(key);
    // A link whose change takes its address away takes the routes through it too.
    let disrupted = |key: &Key| match (observed.get(key), desired.get(key)) {
        (Some(Resource::Link(had)), Some(Resource::Link(wanted))) => had.disrupts(wanted),
        _ => false,
    };
    let mut replaced = BTreeSet::new();
    // Keys order by kind, and dependencies are of earlier kinds, so one pass in key order
    // sees every dependency's verdict before its dependents.
    for (key, wanted) in &desired.resources {
        let Some(existing) = observed.get(key) else { continue };
        let mut dependencies = wanted.dependencies();
        dependencies.extend(existing.dependencies());
        if existing.needs_replacement(wanted)
            || dependencies
                .iter()
                .any(|dependency| replaced.contains(dependency) || deleted(dependency) || disrupted(dependency))
        {
            replaced.insert(key.clone());
        }
    }
    replaced
}
