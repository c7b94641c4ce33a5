//! A saved plan against what apply derives again: each case edits the file or changes one
//! input, and the verdict says whether it is stale or tampered with, and what.

use std::collections::BTreeSet;

use super::*;
use crate::model::{PortRange, Protocol, validate_file};
use crate::plan::plan;
use crate::spec::SourceFile;
use crate::state::{KernelState, LocalPorts, fingerprint, lower};

/// Scenario 1 with a published port whose host port is picked at random.
const STACK: &str = "name: shop
networks:
  web_nw: {}
  db_nw: { subnet: 10.20.0.0/24, internal: true }
containers:
  nginx:
    networks: [web_nw]
    talks_to: ['app:5000/tcp']
    ports: ['80']
  flaskapp:
    networks:
      web_nw: { aliases: [app] }
      db_nw: {}
    talks_to: ['db:5432']
  db:
    networks: [db_nw]
";

/// The host a plan is made on: nothing holds a port.
fn facts() -> HostFacts {
    let ephemeral = PortRange { first: 32768, last: 60999 };
    HostFacts { local_ports: Some(LocalPorts { ephemeral, busy: BTreeSet::new() }), ..HostFacts::default() }
}

/// What apply reads when it applies a saved plan.
#[derive(Clone)]
struct Inputs {
    text: String,
    state: KernelState,
    facts: HostFacts,
}

impl Inputs {
    fn new(text: &str) -> Inputs {
        Inputs { text: text.to_owned(), state: KernelState::default(), facts: facts() }
    }

    fn stack(&self) -> crate::model::Stack {
        let file = SourceFile { name: "stack.yaml".to_owned(), text: self.text.clone() };
        validate_file(&file).stack.expect("a valid stack")
    }

    fn plan_with(&self, facts: &HostFacts) -> Option<Plan> {
        let desired = lower(&self.stack(), &self.state, facts).ok()?;
        Some(plan(&desired, &self.state))
    }

    /// What `plan --out` saves, through its JSON.
    fn saved(&self) -> SavedPlan {
        let stack = self.stack();
        let saved = SavedPlan {
            format_version: SAVED_PLAN_VERSION,
            stack_file: "stack.yaml".to_owned(),
            stack_digest: stack_digest(&self.text),
            host_netns: None,
            scope: Scope::of(&stack, &HostNamespace::Current),
            fingerprint: fingerprint(&self.state),
            host_facts: self.facts.clone(),
            plan: self.plan_with(&self.facts).expect("lowers"),
        };
        serde_json::from_slice(&serde_json::to_vec_pretty(&saved).expect("serializes")).expect("reads back")
    }

    /// The verdict of apply on `saved` with these inputs: its names first, then the rest.
    fn judge(&self, saved: &SavedPlan) -> Result<(), Refusal> {
        if let Some(tampering) = saved.misnamed() {
            return Err(Refusal::Tampered(tampering));
        }
        let scope = Scope::of(&self.stack(), &HostNamespace::Current);
        let from_saved_facts = self.plan_with(&saved.host_facts);
        let from_live_facts = self.plan_with(&self.facts).expect("lowers");
        saved.judge(&Rederived {
            stack_digest: &stack_digest(&self.text),
            scope: &scope,
            fingerprint: &fingerprint(&self.state),
            from_saved_facts: from_saved_facts.as_ref(),
            from_live_facts: &from_live_facts,
        })
    }
}

/// The verdict, as apply words it.
fn verdict(outcome: Result<(), Refusal>) -> String {
    match outcome {
        Ok(()) => "applied".to_owned(),
        Err(Refusal::Stale(staleness)) => format!("stale: {staleness}"),
        Err(Refusal::Tampered(tampering)) => format!("tampered: {tampering}"),
    }
}

/// The first operation that makes a resource of `kind` for `container`.
fn operation_of<'a>(saved: &'a mut SavedPlan, kind: &str, container: &str) -> &'a mut Resource {
    saved
        .plan
        .operations
        .iter_mut()
        .find_map(|operation| match operation {
            Operation::Create { resource }
                if resource.kind().name() == kind
                    && (resource.key().container() == Some(container) || resource.key().label() == container) =>
            {
                Some(resource)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind} of {container} in the plan"))
}

#[test]
fn a_plan_applies_only_while_the_file_and_what_it_was_made_from_are_unchanged() {
    let made = Inputs::new(STACK);
    let saved = made.saved();
    let picked = saved.plan.operations.iter().find_map(|operation| match operation {
        Operation::Create { resource: Resource::Forward(forward) } => match forward.host_ports {
            crate::state::HostPorts::Picked(ports) => Some(ports.first),
            _ => None,
        },
        _ => None,
    });
    let picked = picked.expect("the plan picks a host port");

    type Edit = Box<dyn Fn(&mut SavedPlan, &mut Inputs)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("nothing changed", Box::new(|_, _| {}), "applied"),
        (
            "the stack file was edited",
            Box::new(|_, now| now.text = now.text.replace("talks_to: ['db:5432']", "talks_to: ['db:5433']")),
            "stale: stack file `stack.yaml` changed since the plan was made",
        ),
        (
            "the stack's objects changed",
            Box::new(|_, now| {
                let mut partly = Inputs::new("name: shop\nnetworks:\n  db_nw: { subnet: 10.20.0.0/24 }\n");
                partly.state = KernelState::default();
                let desired = lower(&partly.stack(), &partly.state, &partly.facts).expect("lowers");
                now.state = desired.state;
            }),
            "stale: the stack's objects on this host changed since the plan was made",
        ),
        (
            "the port the plan picked is busy now",
            Box::new(move |_, now| {
                if let Some(ports) = &mut now.facts.local_ports {
                    ports.busy.insert((Protocol::Tcp, picked));
                }
            }),
            "stale: the host's routes, addresses or ports changed since the plan was made, so planning now picks \
             other ones",
        ),
        (
            "a flow's port was edited",
            Box::new(|saved, _| {
                let Resource::Flow(flow) = operation_of(saved, "flow", "flaskapp") else { unreachable!() };
                flow.traffic =
                    crate::model::Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange { first: 22, last: 22 } };
            }),
            "tampered: its operation 4 (`+ flow flaskapp -> db tcp/22 on db_nw`) is not what stack file \
             `stack.yaml` gives for the state it was made against",
        ),
        (
            "a flow was added",
            Box::new(|saved, _| {
                let mut added = operation_of(saved, "flow", "flaskapp").clone();
                let Resource::Flow(flow) = &mut added else { unreachable!() };
                flow.source = "nginx".to_owned();
                saved.plan.operations.push(Operation::Create { resource: added });
            }),
            "tampered: it has 22 operations, and stack file `stack.yaml` gives 21 for the state it was made against",
        ),
        (
            "a namespace name was edited into a path",
            Box::new(|saved, _| {
                let Resource::Namespace(namespace) = operation_of(saved, "netns", "db") else { unreachable!() };
                namespace.name = "../target".to_owned();
            }),
            "tampered: it holds namespace name `../target`, which no stack file gives: the namespace of container \
             `db` is named `shop:db`",
        ),
        (
            "the scope's namespace was edited",
            Box::new(|saved, _| {
                saved.scope.namespaces.insert("db".to_owned(), NamespaceName::Created("../x".to_owned()));
            }),
            "tampered: it holds namespace name `../x`, which no stack file gives: the namespace of container `db` \
             is named `shop:db`",
        ),
        (
            "an interface name was edited into a path",
            Box::new(|saved, _| {
                let Resource::Link(link) = operation_of(saved, "link", "db") else { unreachable!() };
                link.host_ifname = "../../etc".to_owned();
            }),
            "tampered: it holds interface name `../../etc`, which no stack file gives: an interface name has no \
             `/`, `:` or white space and is not `.` or `..`",
        ),
        (
            "a container name was edited",
            Box::new(|saved, _| {
                let Resource::Link(link) = operation_of(saved, "link", "db") else { unreachable!() };
                link.container = "db/../x".to_owned();
            }),
            "tampered: it holds container name `db/../x`, which no stack file gives: `/` is not allowed in a name: \
             use letters, digits, `_`, `.` and `-`",
        ),
        (
            "a host setting was edited to name another file of /proc/sys",
            Box::new(|saved, _| {
                let Resource::Sysctl(sysctl) = operation_of(saved, "sysctl", "net.ipv4.ip_forward") else {
                    unreachable!()
                };
                sysctl.name = "kernel.core_pattern".to_owned();
            }),
            "tampered: it holds setting `kernel.core_pattern`, which no stack file gives: stackctl sets only \
             `net.ipv4.ip_forward`",
        ),
        (
            "a host setting's value was edited",
            Box::new(|saved, _| {
                let Resource::Sysctl(sysctl) = operation_of(saved, "sysctl", "net.ipv4.ip_forward") else {
                    unreachable!()
                };
                sysctl.value = "|/tmp/x".to_owned();
            }),
            "tampered: it holds setting value `|/tmp/x`, which no stack file gives: `net.ipv4.ip_forward` is set to \
             0 or 1",
        ),
        (
            "the scope names another stack",
            Box::new(|saved, _| saved.scope.group ^= 1),
            "tampered: its scope (the stack's name, host, interfaces and namespaces) is not the one stack file \
             `stack.yaml` gives",
        ),
        (
            "the host facts it holds were edited",
            Box::new(move |saved, _| {
                if let Some(ports) = &mut saved.host_facts.local_ports {
                    ports.busy.insert((Protocol::Tcp, picked));
                }
            }),
            "tampered: its operation 3 (`+ forward nginx:80/tcp <- *:random`) is not what stack file `stack.yaml` \
             gives for the state it was made against",
        ),
    ];
    for (case, edit, expected) in cases {
        let mut saved = saved.clone();
        let mut now = made.clone();
        edit(&mut saved, &mut now);
        assert_eq!(verdict(now.judge(&saved)), expected, "{case}");
    }
}

/// Every example's plan reads back from its file equal to the plan derived again, with no
/// name in it that its stack file does not give.
#[test]
fn every_examples_plan_survives_its_file() {
    let examples = [
        include_str!("../../../../../examples/web-app-db.yaml"),
        include_str!("../../../../../examples/web-app-db-v2.yaml"),
        include_str!("../../../../../examples/reverse-proxy.yaml"),
        include_str!("../../../../../examples/pets-tenants.yaml"),
        include_str!("../../../../../examples/port-publishing.yaml"),
        include_str!("../../../../../examples/hot-connect.yaml"),
        // An adopted namespace is named by its path.
        "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], netns: /run/netns/outer }\n",
    ];
    for text in examples {
        let inputs = Inputs::new(text);
        assert_eq!(verdict(inputs.judge(&inputs.saved())), "applied", "{text}");
    }
}
