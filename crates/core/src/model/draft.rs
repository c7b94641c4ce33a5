//! What `stackctl suggest` reads: a stack file's containers, checked as a stack's are, in a
//! file whose networks may be missing or may not carry what the containers need.

use std::collections::BTreeMap;

use super::{Container, Stack};

/// The containers of a stack file whose only errors are gaps in its networks (see
/// [`Drafted::gaps`](super::Drafted::gaps)): their flows, published ports, aliases and
/// namespaces, from which `suggest` derives a layout. Built only by
/// [`validate_draft_file`](super::validate_draft_file). It is no [`Stack`] and never becomes
/// one, so a file that validation rejects is never lowered, planned or applied.
#[derive(Debug)]
pub struct Draft {
    name: String,
    containers: BTreeMap<String, Container>,
}

impl Draft {
    /// The draft of a stack built from a file whose only errors may be gaps in its networks.
    pub(super) fn of(stack: Stack) -> Self {
        Draft { name: stack.name, containers: stack.containers }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every container by name, as written; one that joins no network and has no
    /// `network_mode` is bridged with no membership.
    pub fn containers(&self) -> &BTreeMap<String, Container> {
        &self.containers
    }
}
