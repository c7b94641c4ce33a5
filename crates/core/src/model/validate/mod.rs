//! From a [`StackSpec`] to a [`Stack`], reporting every mistake at once: each network and
//! container on its own (`networks.rs`, `containers.rs`), then what holds between them
//! (`relations.rs`). The same checks give `stackctl suggest` a [`Draft`] of a file whose
//! networks are missing or insufficient.

mod containers;
mod networks;
mod relations;

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Spanned;

use super::identifiers::name_problem;
use super::{Container, Draft, Drain, HOST, Network, Stack};
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
    let Checked { stack, diagnostics, gaps } = check(spec);
    // Networks that do not carry what the containers need are errors like any other here:
    // only a layout derived afresh (`suggest`) may look past them.
    let diagnostics = sorted(diagnostics.into_iter().chain(gaps).collect());
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    Validated { stack: (!failed).then_some(stack), diagnostics }
}

/// The outcome of validation for `stackctl suggest`, which derives the networks afresh: the
/// draft when every error is a gap in the file's networks, the gaps apart from every other
/// finding.
#[derive(Debug)]
pub struct Drafted {
    pub draft: Option<Draft>,
    /// Every finding but the gaps, sorted by place.
    pub diagnostics: Vec<Diagnostic>,
    /// The errors that say only that the file's networks are missing or do not carry what
    /// its containers need, sorted by place: a container that joins no network, a flow whose
    /// two ends share no network (neither of them with a `network_mode`), a published port on
    /// a container that joins only internal networks. Every other error (a wrong value, a
    /// name that resolves to nothing, a conflict, a flow from or to a `network_mode`
    /// container) is no gap: it stops `suggest` as it stops every command.
    pub gaps: Vec<Diagnostic>,
}

/// Reads and checks a stack file's text as [`validate_file`] does, for `stackctl suggest`:
/// gaps in the file's networks leave the draft standing.
pub fn validate_draft_file(file: &SourceFile) -> Drafted {
    let Checked { stack, diagnostics, gaps } = match load(file) {
        Ok(spec) => check(&spec),
        Err(diagnostic) => return Drafted { draft: None, diagnostics: vec![diagnostic], gaps: Vec::new() },
    };
    let diagnostics = sorted(diagnostics);
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    Drafted { draft: (!failed).then(|| Draft::of(stack)), diagnostics, gaps: sorted(gaps) }
}

/// The model as far as it could be built, with the gaps in its networks apart from every
/// other finding.
struct Checked {
    stack: Stack,
    diagnostics: Vec<Diagnostic>,
    gaps: Vec<Diagnostic>,
}

fn check(spec: &StackSpec) -> Checked {
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
    check.bridge_ports(&stack);
    check.static_addresses(&stack);
    check.aliases(&stack);
    check.publications(&stack);
    check.flows(&stack);

    // Over-privilege is a question for a stack that would be planned, with no error of
    // either kind.
    if check.gaps.is_empty() && !check.diagnostics.iter().any(Diagnostic::is_error) {
        check.over_privilege(&stack);
    }
    Checked { stack, diagnostics: check.diagnostics, gaps: check.gaps }
}

/// Findings in the order of their places in the file, an error before a warning at one place.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|diagnostic| (diagnostic.span.offset, diagnostic.severity));
    diagnostics
}

/// Collects findings while the model is built, and remembers where each value was written
/// so that checks spanning several containers can point at both places.
#[derive(Default)]
struct Checker {
    diagnostics: Vec<Diagnostic>,
    /// Errors that say only that the file's networks are missing or insufficient (see
    /// [`Drafted::gaps`]).
    gaps: Vec<Diagnostic>,
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

    /// An error that networks derived afresh would not have (see [`Drafted::gaps`]).
    fn gap(&mut self, diagnostic: Diagnostic) {
        self.gaps.push(diagnostic);
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

    /// A container or an alias may not be called `host`: a flow to that name means the host.
    fn unreserved(&mut self, name: &Spanned<String>, what: &str) {
        if name.value == HOST {
            self.error(
                Diagnostic::error(
                    Span::of(name),
                    format!("{what} name `{HOST}` is reserved: a flow to `{HOST}` means the host itself"),
                    "reserved name",
                )
                .with_help(format!("rename the {what}")),
            );
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
