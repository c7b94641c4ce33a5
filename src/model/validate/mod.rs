//! From a [`StackSpec`] to a [`Stack`], reporting every mistake at once: each network and
//! container on its own (`networks.rs`, `containers.rs`), then what holds between them
//! (`relations.rs`).

mod containers;
mod networks;
mod relations;

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Spanned;

use super::names::name_problem;
use super::{Container, Drain, Network, Stack};
use crate::diagnostic::{Diagnostic, Span};
use crate::spec::{SourceFile, StackSpec, load};

/// The outcome of validation: the stack when there was no error, and every finding.
#[derive(Debug)]
pub struct Validated {
    pub stack: Option<Stack>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and checks a stack file's text: a YAML or type error is the one finding, since
/// nothing after it can be read; otherwise every finding of [`validate`].
pub fn validate_file(file: &SourceFile) -> Validated {
    match load(file) {
        Ok(spec) => validate(&spec),
        Err(diagnostic) => Validated { stack: None, diagnostics: vec![diagnostic] },
    }
}

/// Checks a stack file and builds its model. Errors and warnings come back sorted by their
/// place in the file.
pub fn validate(spec: &StackSpec) -> Validated {
    let mut check = Checker::default();
    check.name(&spec.name, "stack");
    let networks: BTreeMap<String, Network> =
        spec.networks.0.iter().map(|(name, network)| (name.value.clone(), check.network(name, network))).collect();
    check.overlapping_subnets(&networks);
    let containers: BTreeMap<String, Container> = spec
        .containers
        .0
        .iter()
        .map(|(name, container)| (name.value.clone(), check.container(name, container, &networks)))
        .collect();
    let drain = check.drain(spec);
    let stack = Stack::new(spec.name.value.clone(), networks, containers, drain);
    check.subnet_capacity(&stack);
    check.static_addresses(&stack);
    check.aliases(&stack);
    check.publications(&stack);
    check.flows(&stack);

    let failed = check.diagnostics.iter().any(Diagnostic::is_error);
    if !failed {
        check.over_privilege(&stack);
    }
    let mut diagnostics = check.diagnostics;
    diagnostics.sort_by_key(|diagnostic| (diagnostic.span.offset, diagnostic.severity));
    Validated { stack: (!failed).then_some(stack), diagnostics }
}

/// Collects findings while the model is built, and remembers where each value was written
/// so that checks spanning several containers can point at both places.
#[derive(Default)]
struct Checker {
    diagnostics: Vec<Diagnostic>,
    network_names: HashMap<String, Span>,
    subnet_spans: HashMap<String, Span>,
    container_names: HashMap<String, Span>,
    /// (container, network) to the place of the membership, its aliases and its address.
    memberships: HashMap<(String, String), MembershipSpans>,
    /// Each container's publications and flows, in the order of its lists.
    publication_spans: HashMap<String, Vec<Span>>,
    flow_spans: HashMap<String, Vec<Span>>,
}

#[derive(Default)]
struct MembershipSpans {
    aliases: Vec<Span>,
    ipv4: Option<Span>,
}

impl Checker {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn name(&mut self, name: &Spanned<String>, what: &str) {
        if let Some(problem) = name_problem(&name.value) {
            self.error(Diagnostic::error(
                Span::of(name),
                format!("invalid {what} name `{}`: {problem}", name.value),
                format!("invalid {what} name"),
            ));
        }
    }

    /// The stack's containers in the order the file declares them, so that a conflict is
    /// reported at the second place a person reads, with the first one as its context.
    fn in_file_order<'s>(&self, stack: &'s Stack) -> Vec<&'s Container> {
        let mut containers: Vec<&Container> = stack.containers.values().collect();
        containers.sort_by_key(|container| self.container_names[&container.name].offset);
        containers
    }

    /// The stack's drain timeout: as written, else the default.
    fn drain(&mut self, spec: &StackSpec) -> Drain {
        let Some(text) = &spec.drain else { return Drain::DEFAULT };
        Drain::parse(&text.value).unwrap_or_else(|message| {
            self.error(Diagnostic::error(Span::of(text), format!("invalid drain: {message}"), "invalid drain"));
            Drain::DEFAULT
        })
    }

    fn ipv4_span(&self, container: &str, network: &str) -> Span {
        self.memberships[&(container.to_owned(), network.to_owned())].ipv4.unwrap_or_default()
    }
}
