//! A plan saved by `plan --out` and applied later by `apply FILE`: the operations, and what
//! they were planned against, so that apply can refuse a plan the host has moved away from.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::state::Scope;

/// The version of the file format; apply refuses other versions. Version 2 holds aliases,
/// swaps and the name servers of each container; version 3, the backends each alias of a
/// swap leaves.
pub const SAVED_PLAN_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// The stack file the plan was made from, for messages.
    pub stack_file: String,
    /// The named namespace that played the host, if one did.
    pub host_netns: Option<String>,
    pub scope: Scope,
    /// The fingerprint of the stack's state as observed when planning.
    pub fingerprint: String,
    pub plan: Plan,
}
