//! A review as JSON for machines: version 1 of the format documented in docs/diff-json.md.
//!
//! The document has its own types rather than serializing the planner's and the model's:
//! those change shape as the code evolves, and a versioned format must not change with them.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::Review;
use super::reachability::{AliasMove, PublishedPort};
use crate::graph::{AllowedFlow, Grant};
use crate::plan::Operation;
use crate::state::Resource;

/// The version of this format. It changes only when a field is removed or changes meaning;
/// new fields may appear within a version.
const FORMAT_VERSION: u32 = 1;

/// The whole document.
#[derive(Serialize)]
struct Document<'a> {
    /// Always 1 for this format.
    format_version: u32,
    /// The old stack file's name, as given on the command line.
    old: &'a str,
    /// The new stack file's name, as given on the command line.
    new: &'a str,
    /// Whether the change does anything: the plan or the reachability delta is non-empty.
    has_changes: bool,
    /// The kernel operations that turn the old stack's objects into the new one's.
    plan: PlanDocument,
    /// The plan's counts.
    summary: SummaryDocument,
    /// What the change does to who may reach whom.
    reachability: ReachabilityDocument,
}

/// The plan's counts, as Terraform counts them: a replacement adds one and destroys one.
#[derive(Serialize)]
struct SummaryDocument {
    /// Resources created, replacements included.
    add: usize,
    /// Resources changed in place.
    change: usize,
    /// Resources deleted, replacements included.
    destroy: usize,
}

#[derive(Serialize)]
struct PlanDocument {
    /// One entry per resource, in the order the operations run.
    operations: Vec<OperationDocument>,
    /// The make-before-break move of aliases, when the plan makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    swap: Option<SwapDocument>,
}

/// A swap: its moves, what is verified before the repoint, and what drains after it.
#[derive(Serialize)]
struct SwapDocument {
    moves: Vec<MoveDocument>,
    /// `CONTAINER:PORT` pairs that must accept TCP connections before the repoint.
    verify: Vec<String>,
    /// The containers whose established connections finish before what follows.
    drain: Vec<String>,
    /// The drain timeout, such as `30s`.
    drain_timeout: String,
    /// The index in `operations` of the first operation after the repoint.
    removal_starts_at: usize,
}

#[derive(Serialize)]
struct MoveDocument {
    alias: String,
    network: String,
    address: String,
    from: Vec<String>,
    to: Vec<String>,
}

/// One resource's change.
#[derive(Serialize)]
struct OperationDocument {
    /// `create`, `update` (in place), `delete`, or `replace` (deleted, then created again).
    action: &'static str,
    /// The resource kind: `bridge`, `netns`, `link`, `route`, `hosts`, `forward` or `flow`.
    kind: &'static str,
    /// The resource's name in plans, such as `flaskapp@web_nw` or `nginx -> app tcp/5000 on web_nw`.
    label: String,
    /// The attributes before the change, as strings; `null` for `create`.
    before: Option<Attributes>,
    /// The attributes after the change, as strings; `null` for `delete`.
    after: Option<Attributes>,
}

fn swap(review: &Review) -> Option<SwapDocument> {
    let plan = review.plan();
    let swap = plan.swap.as_ref()?;
    // The operations list shows replacements once, so indices count what it shows.
    let replaced = plan.replaced();
    let shown_before = plan.operations[..swap.remove_at]
        .iter()
        .filter(|operation| !(matches!(operation, Operation::Delete { .. }) && replaced.contains(&operation.key())))
        .count();
    Some(SwapDocument {
        moves: swap
            .moves
            .iter()
            .map(|moved| MoveDocument {
                alias: moved.alias.clone(),
                network: moved.network.clone(),
                address: moved.address.to_string(),
                from: moved.from.clone(),
                to: moved.to.clone(),
            })
            .collect(),
        verify: swap.verify.iter().map(|readiness| format!("{}:{}", readiness.container, readiness.port)).collect(),
        drain: swap.drain.iter().map(|leaving| leaving.container.clone()).collect(),
        drain_timeout: swap.timeout.to_string(),
        removal_starts_at: shown_before,
    })
}

/// A resource's attributes as a JSON object, in the planner's fixed order.
struct Attributes(Vec<(&'static str, String)>);

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A map built by hand keeps the planner's order, which a BTreeMap would sort away.
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ReachabilityDocument {
    /// Flows the new stack allows and the old one did not.
    flows_allowed: Vec<FlowDocument>,
    /// Flows the old stack allowed and the new one does not.
    flows_forbidden: Vec<FlowDocument>,
    /// Publications only the new stack has.
    ports_published: Vec<PortDocument>,
    /// Publications only the old stack has.
    ports_unpublished: Vec<PortDocument>,
    /// The entries of `ports_published` whose `host_ip` is `null`: every host interface.
    exposed_on_all_interfaces: Vec<PortDocument>,
    /// Aliases whose holders on a network differ.
    alias_moves: Vec<AliasMoveDocument>,
}

/// One allowed flow: `source` may open connections to `destination` on `network`.
#[derive(Serialize)]
struct FlowDocument {
    source: String,
    destination: String,
    network: String,
    /// `all`, or a protocol and ports: `tcp/5000`, `udp/8000-8100`, `tcp/*` (every port).
    traffic: String,
    /// Why it is allowed: `declared` (a `talks_to` entry) or `open_network`.
    grant: &'static str,
}

/// One published port range of one container.
#[derive(Serialize)]
struct PortDocument {
    container: String,
    /// The host address; `null` is every interface.
    host_ip: Option<String>,
    /// The host ports, `8080` or `8000-8100`; `null` when stackctl picks them.
    host_ports: Option<String>,
    /// The container's ports, `80` or `8000-8100`.
    container_ports: String,
    /// `tcp` or `udp`.
    protocol: String,
}

/// The containers that hold an alias on one network, before and after.
#[derive(Serialize)]
struct AliasMoveDocument {
    network: String,
    alias: String,
    /// Sorted container names; empty when the alias is new.
    before: Vec<String>,
    /// Sorted container names; empty when the alias is gone.
    after: Vec<String>,
}

pub fn render(review: &Review, old_name: &str, new_name: &str) -> String {
    let delta = &review.reachability;
    let summary = review.plan.summary();
    let document = Document {
        format_version: FORMAT_VERSION,
        old: old_name,
        new: new_name,
        has_changes: review.has_changes(),
        plan: PlanDocument { operations: operations(review), swap: swap(review) },
        summary: SummaryDocument { add: summary.add, change: summary.change, destroy: summary.destroy },
        reachability: ReachabilityDocument {
            flows_allowed: delta.flows_allowed.iter().map(flow).collect(),
            flows_forbidden: delta.flows_forbidden.iter().map(flow).collect(),
            ports_published: delta.ports_published.iter().map(port).collect(),
            ports_unpublished: delta.ports_unpublished.iter().map(port).collect(),
            exposed_on_all_interfaces: delta.exposed_on_all_interfaces.iter().map(port).collect(),
            alias_moves: delta.alias_moves.iter().map(alias_move).collect(),
        },
    };
    let mut out = serde_json::to_string_pretty(&document).expect("a review serializes");
    out.push('\n');
    out
}

/// The operations, a replacement's delete and create folded into one `replace` at the place
/// of the create, as the text plan shows it.
fn operations(review: &Review) -> Vec<OperationDocument> {
    let replaced = review.plan.replaced();
    let attributes = |resource: &Resource| Some(Attributes(resource.attributes()));
    review
        .plan
        .operations
        .iter()
        .filter_map(|operation| {
            let key = operation.key();
            let (action, before, after) = match operation {
                Operation::Delete { .. } if replaced.contains(&key) => return None,
                Operation::Delete { resource } => ("delete", attributes(resource), None),
                Operation::Create { resource } if replaced.contains(&key) => {
                    let deleted = review.plan.operations.iter().find_map(|earlier| match earlier {
                        Operation::Delete { resource } if resource.key() == key => Some(resource),
                        _ => None,
                    });
                    ("replace", deleted.and_then(attributes), attributes(resource))
                }
                Operation::Create { resource } => ("create", None, attributes(resource)),
                Operation::Update { before, after } => ("update", attributes(before), attributes(after)),
            };
            Some(OperationDocument { action, kind: key.kind().name(), label: key.label(), before, after })
        })
        .collect()
}

fn flow(flow: &AllowedFlow) -> FlowDocument {
    FlowDocument {
        source: flow.source.clone(),
        destination: flow.destination.clone(),
        network: flow.network.clone(),
        traffic: flow.traffic.to_string(),
        grant: match flow.grant {
            Grant::Declared => "declared",
            Grant::OpenNetwork => "open_network",
        },
    }
}

fn port(port: &PublishedPort) -> PortDocument {
    let publication = &port.publication;
    PortDocument {
        container: port.container.clone(),
        host_ip: publication.host_ip.map(|ip| ip.to_string()),
        host_ports: publication.host_ports.map(|ports| ports.to_string()),
        container_ports: publication.container_ports.to_string(),
        protocol: publication.protocol.to_string(),
    }
}

fn alias_move(alias: &AliasMove) -> AliasMoveDocument {
    AliasMoveDocument {
        network: alias.network.clone(),
        alias: alias.alias.clone(),
        before: alias.before.iter().cloned().collect(),
        after: alias.after.iter().cloned().collect(),
    }
}
