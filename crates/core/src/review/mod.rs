//! Reviewing a change between two stack files: the plan between them and what it does to
//! reachability, rendered for a terminal, for machines or for a pull request comment.
//!
//! Nothing here reads a kernel: both files are lowered onto an empty host, so `stackctl diff`
//! runs without root, in CI, on two revisions of a file.

mod json;
mod markdown;
mod mermaid;
mod reachability;
mod text;

pub use reachability::{AliasMove, PublishedPort, Reachability};

use crate::model::Stack;
use crate::plan::{Plan, plan};
use crate::state::{HostFacts, KernelState, LowerError, lower};

/// How a review is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Terraform-style text for a terminal.
    Text,
    /// Versioned JSON for machines: see docs/diff-json.md.
    Json,
    /// Markdown to post as a pull request comment.
    Markdown,
}

/// The change from one stack file to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    plan: Plan,
    reachability: Reachability,
}

impl Review {
    /// Reviews the change from `old` to `new`.
    ///
    /// The new stack is lowered against the old one's state, as the real kernel would hold
    /// it, so that addresses, subnets and interface names the old stack picked stay put and
    /// the plan shows only what the change itself moves.
    pub fn between(old: &Stack, new: &Stack) -> Result<Review, LowerError> {
        let old_desired = lower(old, &KernelState::default(), &HostFacts::default())?;
        let new_desired = lower(new, &old_desired.state, &HostFacts::default())?;
        Ok(Review { plan: plan(&new_desired, &old_desired.state), reachability: Reachability::between(old, new) })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn reachability(&self) -> &Reachability {
        &self.reachability
    }

    /// Whether the change does anything: to kernel objects or to reachability.
    pub fn has_changes(&self) -> bool {
        !self.plan.is_empty() || !self.reachability.is_empty()
    }

    /// The review in `format`; `old_name` and `new_name` name the two files. `color` only
    /// applies to text, the one format meant for a terminal.
    pub fn render(&self, format: Format, old_name: &str, new_name: &str, color: bool) -> String {
        match format {
            Format::Text => text::render(self, old_name, new_name, color),
            Format::Json => json::render(self, old_name, new_name),
            Format::Markdown => markdown::render(self, old_name, new_name),
        }
    }
}
